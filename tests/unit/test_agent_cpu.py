"""The agent's CPU meter over a fake counter source: every reading spans a real interval."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from perfmon.agent.adapters.cpu import CpuMeter, CpuTimes
from perfmon.agent.adapters.spool import Spool
from perfmon.agent.sampler import Sampler
from perfmon.agent.status import StatusReport


class Counters:
    """CPU-time counters that move only when the test says so, as a machine's would between readings."""

    def __init__(self) -> None:
        self.now = CpuTimes(busy=1000.0, total=4000.0)

    def run(self, busy: float, idle: float) -> None:
        self.now = CpuTimes(self.now.busy + busy, self.now.total + busy + idle)

    def __call__(self) -> CpuTimes:
        return self.now


@pytest.fixture
def counters() -> Counters:
    return Counters()


def test_the_first_reading_is_the_load_since_the_meter_was_made_not_zero(counters: Counters) -> None:
    meter = CpuMeter(counters)
    counters.run(busy=3.0, idle=1.0)

    assert meter() == 75.0


def test_each_reading_covers_only_the_interval_since_the_previous_one(counters: Counters) -> None:
    meter = CpuMeter(counters)
    counters.run(busy=1.0, idle=1.0)
    assert meter() == 50.0
    counters.run(busy=0.0, idle=2.0)
    assert meter() == 0.0
    counters.run(busy=2.0, idle=0.0)
    assert meter() == 100.0


def test_the_reading_does_not_depend_on_the_thread_that_made_the_meter(counters: Counters) -> None:
    made: list[CpuMeter] = []
    maker = threading.Thread(target=lambda: made.append(CpuMeter(counters)))
    maker.start()
    maker.join()
    counters.run(busy=1.0, idle=3.0)

    assert made[0]() == 25.0


def test_no_interval_measured_is_no_reading_and_the_next_one_spans_the_whole_time(counters: Counters) -> None:
    meter = CpuMeter(counters)
    assert meter() is None  # the counters have not ticked since
    counters.run(busy=1.0, idle=1.0)
    counters.run(busy=1.0, idle=0.0)

    assert meter() == pytest.approx(200 / 3)


def test_a_counter_that_steps_back_reads_as_idle_not_negative(counters: Counters) -> None:
    meter = CpuMeter(counters)
    counters.now = CpuTimes(busy=counters.now.busy - 0.5, total=counters.now.total + 2.0)

    assert meter() == 0.0


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "spool", limit=100) as opened:
        yield opened


def test_the_sampler_spools_no_sample_for_an_interval_it_could_not_measure(spool: Spool) -> None:
    readings = iter([None, 12.5])
    sampler = Sampler(lambda: next(readings), spool, StatusReport(), interval=1.0, wall_clock=lambda: 1e9)

    sampler.take_sample()
    sampler.take_sample()

    assert [sample.cpu for sample in spool.peek(10).samples] == [12.5]
