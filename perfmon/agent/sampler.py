"""The sampling side of the agent: one reading of the machine per interval, on a monotonic schedule, into
the spool."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from perfmon.agent.model import Sample
from perfmon.agent.ports import MetricsReader, SampleSink, SpoolWriteError
from perfmon.agent.status import StatusReport


class Sampler:
    """Reads the machine's metrics every interval and spools them as one sample; the clocks are injected
    for tests."""

    def __init__(
        self,
        read_metrics: MetricsReader,
        spool: SampleSink,
        report: StatusReport,
        interval: float,
        *,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval <= 0:
            raise ValueError("the interval must be positive")
        self._read_metrics, self._spool, self._report = read_metrics, spool, report
        self._interval, self._wall_clock, self._monotonic = interval, wall_clock, monotonic

    def run(self, stop: threading.Event) -> None:
        """Sample until stop is set. Ticks are paced from the schedule, not from the previous sample, so
        the rate does not drift; after a stall (a suspended laptop) missed ticks are skipped, not burst."""
        next_tick = self._monotonic() + self._interval
        while not stop.wait(max(0.0, next_tick - self._monotonic())):
            self.take_sample()
            next_tick += self._interval
            if self._monotonic() - next_tick > self._interval:
                next_tick = self._monotonic() + self._interval

    def take_sample(self) -> None:
        """Read the metrics and spool them with the wall-clock time they were taken."""
        metrics = self._read_metrics()
        if not metrics:
            return  # nothing measured: a gap is truer than a made-up reading
        sample = Sample({name: float(value) for name, value in metrics.items()}, self._wall_clock())
        try:
            self._spool.append(sample)
        except SpoolWriteError as error:
            self._report.event(logging.ERROR, f"sample lost: {error}")
        self._report.refresh(self._spool.counts())
