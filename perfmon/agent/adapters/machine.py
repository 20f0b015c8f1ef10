"""The machine as the agent measures it: PROTOCOL.md part 3's catalogue, from one reading per interval.

A `Reading` is what the machine says at one instant: gauges (memory, swap, load, disk use, temperatures)
and cumulative counters (CPU time, bytes read and written, bytes received and sent per interface). The
meter turns two readings into a sample: gauges as they are, CPU % and byte rates from the counters'
change divided by the monotonic time between the readings. `psutil_reading` reads the real machine;
tests hand the meter a fake reading source instead (no patching of psutil).

Counters are read once when the meter is made, so the first sample, one interval later, already has
every rate. A byte counter that went down (a reboot, a 32-bit wrap psutil did not catch, a device that
went away and came back) gives no rate for that reading, never a negative or absurd one; the reading
becomes the baseline, so the next sample has a rate again. A device that appears counts from its
second reading; one that disappears is left out."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from perfmon.agent.adapters.cpu import CpuTimes, busy_percent, psutil_cpu_times

# No disk or network interface of a single machine moves a terabyte a second: a rate above this comes
# from a counter that jumped (reset behind psutil's back), so that reading gets no rate.
MAX_BYTES_PER_SECOND = 1e12


@dataclass(frozen=True)
class Reading:
    """One instant of the machine. Percentages are 0..100; byte counters are per device (disk or
    interface name -> cumulative bytes), loopback interfaces left out; `temperatures` in °C, one per
    sensor, empty where there is none. None where the machine could not say (no load average, the disk
    path unreadable)."""

    monotonic: float
    cpu: CpuTimes
    memory_percent: float
    swap_total: int
    swap_used: int
    load: tuple[float, float, float] | None
    disk_percent: float | None
    disk_read: Mapping[str, int] = field(default_factory=dict)
    disk_write: Mapping[str, int] = field(default_factory=dict)
    net_rx: Mapping[str, int] = field(default_factory=dict)
    net_tx: Mapping[str, int] = field(default_factory=dict)
    temperatures: tuple[float, ...] = ()


ReadingSource = Callable[[], Reading]
# The catalogue's rate metrics, each with the Reading field holding its counters.
_RATES = ("disk_read", "disk_write", "net_rx", "net_tx")


def byte_rate(before: Mapping[str, int], after: Mapping[str, int], seconds: float) -> float | None:
    """Bytes per second over the devices present in both readings; None when none is, when no time
    passed, when a counter went down (a reset or wrap: no honest rate), or when the rate is absurd."""
    common = before.keys() & after.keys()
    if not common or seconds <= 0:
        return None
    moved = [after[device] - before[device] for device in common]
    if min(moved) < 0:
        return None
    rate = sum(moved) / seconds
    return rate if rate <= MAX_BYTES_PER_SECOND else None


class MachineMeter:
    """The catalogue's metrics since the previous call (a MetricsReader): `cpu`, `mem`, `swap` (0 when
    the machine has no swap), `load1`/`load5`/`load15`, `disk` (% used of the disk path), `disk_read`,
    `disk_write`, `net_rx`, `net_tx` (bytes/s), `temp` (°C of the hottest sensor, only where there is
    one). A metric that could not be measured this time is left out of the reading."""

    def __init__(self, read: ReadingSource) -> None:
        self._read = read
        self._last = self._last_cpu = read()

    def __call__(self) -> dict[str, float]:
        now = self._read()
        metrics: dict[str, float] = {}
        cpu = busy_percent(self._last_cpu.cpu, now.cpu)
        if cpu is not None:
            metrics["cpu"] = cpu
            self._last_cpu = now  # otherwise keep the older counters: the next reading spans real time
        metrics["mem"] = now.memory_percent
        metrics["swap"] = 100.0 * now.swap_used / now.swap_total if now.swap_total > 0 else 0.0
        if now.load is not None:
            metrics["load1"], metrics["load5"], metrics["load15"] = now.load
        if now.disk_percent is not None:
            metrics["disk"] = now.disk_percent
        seconds = now.monotonic - self._last.monotonic
        for name in _RATES:
            rate = byte_rate(getattr(self._last, name), getattr(now, name), seconds)
            if rate is not None:
                metrics[name] = rate
        temperatures = [t for t in now.temperatures if math.isfinite(t)]
        if temperatures:
            metrics["temp"] = max(temperatures)
        self._last = now
        # PROTOCOL.md part 3: values are finite, and all but temp >= 0; what is not is left out.
        return {
            name: value
            for name, value in metrics.items()
            if math.isfinite(value) and (value >= 0 or name == "temp")
        }


def is_loopback(name: str, flags: str | None) -> bool:
    """Whether an interface is a loopback: by psutil's flags where it gives them (Linux, macOS, BSD),
    else by the usual names (`lo`, `lo0`)."""
    if flags is not None:
        return "loopback" in flags.split(",")
    return name == "lo" or (name.startswith("lo") and name[2:].isdigit())


def psutil_reading(disk_path: str = "/") -> ReadingSource:
    """A reading source over psutil, with the disk-use gauge of `disk_path`'s filesystem."""
    import psutil  # here rather than at the top: `perfmon serve` never needs it

    def read() -> Reading:
        memory, swap = psutil.virtual_memory(), psutil.swap_memory()
        try:  # os.getloadavg where there is one; psutil emulates it elsewhere (Windows)
            load: tuple[float, float, float] | None = psutil.getloadavg()
        except OSError:
            load = None
        try:
            disk_percent: float | None = psutil.disk_usage(disk_path).percent
        except OSError:
            disk_percent = None  # gone or unreadable now: a gap in `disk`, not a stop
        disks = psutil.disk_io_counters(perdisk=False)  # whole disks, not their partitions too
        stats = psutil.net_if_stats()
        nics = {
            name: counters
            for name, counters in psutil.net_io_counters(pernic=True).items()
            if not is_loopback(name, getattr(stats.get(name), "flags", None))
        }
        # Linux and FreeBSD only; a machine without sensors has no `temp`.
        sensors: dict[str, list[Any]] = getattr(psutil, "sensors_temperatures", dict)()
        return Reading(
            monotonic=time.monotonic(),
            cpu=psutil_cpu_times(),
            memory_percent=memory.percent,
            swap_total=swap.total,
            swap_used=swap.used,
            load=load,
            disk_percent=disk_percent,
            disk_read={"disks": disks.read_bytes} if disks else {},
            disk_write={"disks": disks.write_bytes} if disks else {},
            net_rx={name: counters.bytes_recv for name, counters in nics.items()},
            net_tx={name: counters.bytes_sent for name, counters in nics.items()},
            temperatures=tuple(
                float(sensor.current)
                for group in sensors.values()
                for sensor in group
                if sensor.current is not None
            ),
        )

    return read
