"""CPU use as the agent measures it: percent busy between two readings of the machine's CPU-time counters.

The meter (adapters/machine.py) keeps the previous counters itself. psutil.cpu_percent(interval=None)
keeps them per calling thread since psutil 5.9.6, so priming it on one thread and sampling on another
gave 0.0 as the first reading whatever the load; a meter holding its own counters cannot depend on who
calls it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative CPU seconds since boot, summed over every CPU: time spent busy, and time in total."""

    busy: float
    total: float


def psutil_cpu_times() -> CpuTimes:
    """The machine's counters, counted the way psutil.cpu_percent counts them (and htop)."""
    import psutil  # here rather than at the top: `perfmon serve` never needs it

    times = psutil.cpu_times()
    total = sum(times)
    # Linux already counts guest time in user and nice; iowait is idle time that Linux keeps apart.
    total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    busy = total - times.idle - getattr(times, "iowait", 0.0)
    return CpuTimes(busy=busy, total=total)


def busy_percent(last: CpuTimes, now: CpuTimes) -> float | None:
    """Percent of the CPU time between two readings spent busy (0..100); None when the counters did not
    move (they tick every 10 ms on Linux): no measurement rather than a made-up 0."""
    total = now.total - last.total
    if total <= 0:
        return None
    # Counters have been seen to step back a little (psutil issues 392, 645, 1210): clamp.
    busy = min(max(now.busy - last.busy, 0.0), total)
    return 100.0 * busy / total
