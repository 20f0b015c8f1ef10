"""The agent's machine meter over a fake reading source: the catalogue, CPU % and byte rates between two
readings, and no negative or absurd rate whatever the counters do."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfmon.agent.adapters.cpu import CpuTimes
from perfmon.agent.adapters.machine import MAX_BYTES_PER_SECOND, MachineMeter, Reading, byte_rate, is_loopback
from perfmon.agent.adapters.spool import Spool
from perfmon.agent.model import CATALOGUE
from perfmon.agent.sampler import Sampler
from perfmon.agent.status import StatusReport
from perfmon.domain.model import CATALOGUE as SERVER_CATALOGUE

GIB = 1 << 30


class Machine:
    """A machine whose counters move only when the test says so, as a real one's would between readings."""

    def __init__(self) -> None:
        self.now = Reading(
            monotonic=1000.0,
            cpu=CpuTimes(busy=1000.0, total=4000.0),
            memory_percent=41.5,
            swap_total=2 * GIB,
            swap_used=GIB // 2,
            load=(0.5, 0.25, 0.125),
            disk_percent=63.0,
            disk_read={"disks": 10_000},
            disk_write={"disks": 20_000},
            net_rx={"eth0": 1_000, "wlan0": 5_000},
            net_tx={"eth0": 2_000, "wlan0": 6_000},
            temperatures=(45.0, 71.5, 38.0),
        )

    def run(self, seconds: float, busy: float = 0.0, **moved: dict[str, int]) -> None:
        """`seconds` pass; the CPU is busy for `busy` of them; each named counter moves by its bytes."""
        changes: dict[str, object] = {
            "monotonic": self.now.monotonic + seconds,
            "cpu": CpuTimes(self.now.cpu.busy + busy, self.now.cpu.total + seconds),
        }
        for name, by_device in moved.items():
            counters = dict(getattr(self.now, name))
            for device, count in by_device.items():
                counters[device] = counters.get(device, 0) + count
            changes[name] = counters
        self.now = dataclasses.replace(self.now, **changes)  # type: ignore[arg-type]

    def set(self, **fields: object) -> None:
        self.now = dataclasses.replace(self.now, **fields)  # type: ignore[arg-type]

    def __call__(self) -> Reading:
        return self.now


@pytest.fixture
def machine() -> Machine:
    return Machine()


def test_the_agents_catalogue_is_the_servers() -> None:
    assert set(CATALOGUE) == set(SERVER_CATALOGUE)


def test_a_reading_holds_the_whole_catalogue_with_rates_over_the_real_elapsed_time(machine: Machine) -> None:
    meter = MachineMeter(machine)
    machine.run(
        2.0,
        busy=0.5,
        disk_read={"disks": 4096},
        disk_write={"disks": 1000},
        net_rx={"eth0": 300, "wlan0": 100},
        net_tx={"eth0": 50},
    )

    assert meter() == {
        "cpu": 25.0,
        "mem": 41.5,
        "swap": 25.0,
        "load1": 0.5,
        "load5": 0.25,
        "load15": 0.125,
        "disk": 63.0,
        "disk_read": 2048.0,
        "disk_write": 500.0,
        "net_rx": 200.0,
        "net_tx": 25.0,
        "temp": 71.5,
    }


def test_the_first_reading_already_has_rates_since_the_meter_was_made(machine: Machine) -> None:
    meter = MachineMeter(machine)  # made as the agent starts: the counters' baseline
    machine.run(0.5, busy=0.25, net_rx={"eth0": 1000})

    first = meter()

    assert (first["cpu"], first["net_rx"], first["disk_read"]) == (50.0, 2000.0, 0.0)


def test_each_reading_covers_only_the_time_since_the_previous_one(machine: Machine) -> None:
    meter = MachineMeter(machine)
    machine.run(1.0, net_tx={"wlan0": 100})
    assert meter()["net_tx"] == 100.0
    machine.run(4.0, busy=4.0, net_tx={"wlan0": 100})

    assert meter()["net_tx"] == 25.0


def test_no_swap_reads_as_zero_percent(machine: Machine) -> None:
    machine.set(swap_total=0, swap_used=0)
    meter = MachineMeter(machine)
    machine.run(1.0)

    assert meter()["swap"] == 0.0


def test_a_machine_without_sensors_sends_no_temp_and_the_rest_of_the_catalogue(machine: Machine) -> None:
    machine.set(temperatures=())
    meter = MachineMeter(machine)
    machine.run(1.0, busy=0.5)

    assert set(meter()) == set(CATALOGUE) - {"temp"}


def test_a_sensor_below_zero_is_a_temperature_like_any_other(machine: Machine) -> None:
    machine.set(temperatures=(-12.5, -30.0))
    meter = MachineMeter(machine)
    machine.run(1.0)

    assert meter()["temp"] == -12.5


def test_what_the_machine_cannot_say_is_left_out(machine: Machine) -> None:
    machine.set(load=None, disk_percent=None, disk_read={}, disk_write={})
    meter = MachineMeter(machine)
    machine.run(1.0, busy=1.0)

    assert set(meter()) == set(CATALOGUE) - {"load1", "load5", "load15", "disk", "disk_read", "disk_write"}


def test_a_counter_that_went_down_gives_no_rate_that_time_and_counts_from_there(machine: Machine) -> None:
    meter = MachineMeter(machine)
    machine.run(1.0, disk_read={"disks": 1000})
    assert meter()["disk_read"] == 1000.0

    machine.set(disk_read={"disks": 300})  # the counters were reset (a driver reloaded, a reboot)
    machine.run(1.0)
    assert "disk_read" not in meter()
    machine.run(1.0, disk_read={"disks": 700})

    assert meter()["disk_read"] == 700.0


def test_a_32_bit_counter_that_wrapped_gives_no_rate_not_a_negative_one(machine: Machine) -> None:
    machine.set(net_rx={"eth0": 2**32 - 100})
    meter = MachineMeter(machine)
    machine.set(net_rx={"eth0": 400})  # wrapped: 500 bytes really moved
    machine.run(1.0)

    reading = meter()
    assert "net_rx" not in reading
    assert reading["net_tx"] == 0.0  # the other direction did not wrap


def test_an_absurd_jump_gives_no_rate(machine: Machine) -> None:
    meter = MachineMeter(machine)
    machine.run(1.0, net_tx={"eth0": 2**64})  # a counter reset behind psutil's back to something huge

    assert "net_tx" not in meter()


def test_an_interface_that_appears_counts_from_its_second_reading_and_one_that_goes_is_left_out(
    machine: Machine,
) -> None:
    meter = MachineMeter(machine)
    machine.run(1.0, net_rx={"eth0": 100, "wg0": 10**9})  # wg0 is new, with bytes from before
    assert meter()["net_rx"] == 100.0
    machine.run(1.0, net_rx={"wg0": 50})
    assert meter()["net_rx"] == 50.0

    machine.set(net_rx={"wg0": machine.now.net_rx["wg0"] + 10})  # eth0 and wlan0 are gone
    machine.run(1.0)
    assert meter()["net_rx"] == 10.0


def test_no_time_elapsed_gives_no_rate(machine: Machine) -> None:
    meter = MachineMeter(machine)
    machine.set(net_rx={"eth0": 5000, "wlan0": 5000})

    assert not {"net_rx", "disk_read", "cpu"} & set(meter())


@given(
    before=st.dictionaries(st.sampled_from(["eth0", "eth1", "wg0"]), st.integers(0, 2**64)),
    after=st.dictionaries(st.sampled_from(["eth0", "eth1", "wg0"]), st.integers(0, 2**64)),
    seconds=st.floats(-10, 1e6, allow_nan=False),
)
def test_a_rate_is_never_negative_or_absurd_whatever_the_counters_do(
    before: dict[str, int], after: dict[str, int], seconds: float
) -> None:
    rate = byte_rate(before, after, seconds)

    assert rate is None or 0 <= rate <= MAX_BYTES_PER_SECOND


def test_the_cpu_reading_does_not_depend_on_the_thread_that_made_the_meter(machine: Machine) -> None:
    made: list[MachineMeter] = []
    maker = threading.Thread(target=lambda: made.append(MachineMeter(machine)))
    maker.start()
    maker.join()
    machine.run(4.0, busy=1.0)

    assert made[0]()["cpu"] == 25.0


def test_cpu_counters_that_did_not_tick_give_no_cpu_and_the_next_reading_spans_the_whole_time(
    machine: Machine,
) -> None:
    meter = MachineMeter(machine)
    assert "cpu" not in meter()
    machine.run(2.0, busy=1.0)
    machine.run(1.0, busy=1.0)

    assert meter()["cpu"] == pytest.approx(200 / 3)


def test_a_cpu_counter_that_steps_back_reads_as_idle_not_negative(machine: Machine) -> None:
    meter = MachineMeter(machine)
    machine.run(2.0, busy=-0.5)

    assert meter()["cpu"] == 0.0


@pytest.mark.parametrize(
    ("name", "flags", "loopback"),
    [("lo", "up,loopback,running", True), ("eth0", "up,broadcast,running,multicast", False)]
    + [("lo", None, True), ("lo0", None, True), ("lowpan0", None, False), ("eth0", None, False)]
    + [("lo-like", "up,running", False)],
)
def test_loopback_interfaces_are_told_by_their_flags_else_by_name(
    name: str, flags: str | None, loopback: bool
) -> None:
    assert is_loopback(name, flags) is loopback


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "spool", limit=100) as opened:
        yield opened


def test_the_sampler_spools_one_multi_metric_sample_per_reading_and_none_for_an_empty_one(
    spool: Spool,
) -> None:
    readings = iter([{}, {"cpu": 12.5, "mem": 40.0, "temp": -3.0}])
    sampler = Sampler(lambda: next(readings), spool, StatusReport(), interval=1.0, wall_clock=lambda: 1e9)

    sampler.take_sample()
    sampler.take_sample()

    assert [sample.metrics for sample in spool.peek(10).samples] == [{"cpu": 12.5, "mem": 40.0, "temp": -3.0}]
