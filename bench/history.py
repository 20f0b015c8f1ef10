"""The `history` workload: a long session beside a short one, read over HTTP (issue 11's targets).

Each storage mode gets a storage of its own holding three sessions of agent-like samples (workload.py's
agent_history): the long one (`--history-days`, 30 by default, at 1 Hz), one of its last 600 s and one
of its last 1,000 samples. They are appended through the adapters in batches of 10,000 before the server
starts, day by day with the storage's maintenance at the start of each day and once more at the end, as
a running server would have run it.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import workload as w
from .processes import BenchError, Server, WrkResult
from .report import Check, Measurement
from .stores import DatabaseStore, FileStore, Store

MB = 1e6


@dataclass(frozen=True)
class HistoryData:
    """The three sessions of a history storage and what they hold (times in seconds since the epoch)."""

    long: str
    short: str
    raw: str
    count: int  # samples in the long session
    end: float  # the long session's last sample was taken a few ms after it
    first: float  # the long session's first and last sample times
    last: float

    @property
    def step(self) -> int:
        """The dashboard's step for the whole of the long session."""
        return w.dashboard_step(self.last - self.first)

    def recent_path(self, token: str) -> str:
        return f"/cpu?hash={token}&start_time={self.end - w.RECENT_SECONDS!r}"

    def whole_path(self) -> str:
        """The dashboard's query for the whole session: its first..last sample at its step."""
        return f"/cpu?hash={self.long}&start_time={self.first!r}&cur_time={self.last!r}&step={self.step}"

    def raw_path(self) -> str:
        return f"/cpu?hash={self.raw}"


def prepare(
    store: Store, days: int, progress: Callable[[str], None]
) -> tuple[HistoryData, list[Measurement]]:
    """Fill the storage's three sessions (`days` at 1 Hz in the long one), run its maintenance, and
    measure its bytes on disk; the sessions, and the figures of the filling as runs of repetition 0."""
    end = float(math.floor(time.time()))
    count = days * 86400
    long, short, raw = store.new_sessions(3)
    started = time.monotonic()
    _load_as_lived(store, long, w.agent_history(end, count))
    load_seconds = time.monotonic() - started
    store.load(short, w.agent_history(end, w.RECENT_SECONDS + 1))
    store.load(raw, w.agent_history(end, w.RAW_REFERENCE))
    progress(f"  history {store.kind}: {count:,} samples appended in {load_seconds:.0f} s")
    started = time.monotonic()
    store.maintain(time.time())
    maintain_seconds = time.monotonic() - started
    if isinstance(store, DatabaseStore):
        store.vacuum()
    first = next(w.agent_history(end, count))[0][1]
    last = next(w.agent_history(end, 1))[-1][1]
    data = HistoryData(long, short, raw, count, end, first, last)
    figures = {
        "history_samples": count,
        "history_load_rate": count / load_seconds,
        "history_maintain_s": maintain_seconds,
        "history_step": data.step,
        **_disk_use(store, data),
    }
    return data, [Measurement(case, store.kind, 0, value) for case, value in figures.items()]


def _disk_use(store: Store, data: HistoryData) -> dict[str, float]:
    """Bytes on disk per stored sample: raw, rollups, both; and (files) both for the closed days."""
    stored = data.count + w.RECENT_SECONDS + 1 + w.RAW_REFERENCE
    disk = store.disk_use([data.long, data.short, data.raw])
    figures = {
        "history_disk_raw": disk.raw / stored,
        "history_disk_rollups": disk.rollups / stored,
        "history_disk_total": (disk.raw + disk.rollups) / stored,
    }
    # The long session's closed days: every sample taken before the UTC day that holds its last.
    closed = data.count - (data.end - _day_start(data.end)) - 1
    if isinstance(store, FileStore) and closed > 0:
        closed_disk = store.disk_use([data.long], closed_before=data.end)
        figures["history_disk_closed"] = (closed_disk.raw + closed_disk.rollups) / closed
    return figures


def _load_as_lived(store: Store, token: str, batches: Iterable[list[tuple[float, float]]]) -> None:
    """Append the batches day by day, oldest first, running the storage's maintenance at the start of
    each UTC day as a server's timer would have on that day: the history lands where a month of live
    posts would have put it (PostgreSQL: in the daily partitions made ahead, not in the default one;
    files: each day's segment compacted once closed, not a month's backlog worked off pass by pass)."""
    for day, batches_of_day in itertools.groupby(batches, key=lambda batch: _day_start(batch[0][1])):
        store.maintain(day + 1.0)
        store.load(token, batches_of_day)


def _day_start(moment: float) -> float:
    """The start of the UTC day holding the moment (perfmon's rollups.day_start, which 70a4571 lacks)."""
    return math.floor(moment / 86400) * 86400


class Wrk(Protocol):
    def __call__(
        self,
        server: Server,
        config: dict[str, object],
        connections: int,
        name: str,
        seconds: int | None = None,
    ) -> WrkResult: ...


class HistoryRuns:
    """One repetition of the history workload against one mode's freshly started server."""

    def __init__(
        self,
        wrk: Wrk,
        record: Callable[[Measurement], None],
        next_run: Callable[[], tuple[int, float]],
        check_posts: Callable[[Store, list[str], float, WrkResult], Check],
        seconds: int,
    ) -> None:
        self._wrk, self._record, self._next_run, self._check_posts = wrk, record, next_run, check_posts
        self._seconds = seconds

    def run(self, rep: int, mode: str, server: Server, store: Store, data: HistoryData) -> None:
        """The reads one after the other, the posts alone, then the posts beside the readers; the
        server's memory from before the first read to after the readers."""
        idle = memory(server.pid)["VmRSS"]
        buckets = check_answers(server.url, data)
        if rep == 0:
            self._record(Measurement("history_buckets", mode, rep, buckets))
        recent = data.recent_path(data.long)
        self._reads(
            rep,
            mode,
            server,
            [("history_recent_long", recent), ("history_recent_short", data.recent_path(data.short))],
        )
        self._reads(
            rep, mode, server, [("history_whole", data.whole_path()), ("history_raw_1k", data.raw_path())]
        )
        self._post(rep, mode, server, store, "history_post_idle")
        self._readers(rep, mode, server, store, [recent, data.whole_path()])
        peak = memory(server.pid)["VmHWM"]
        for case, value in (
            ("history_rss_idle", idle),
            ("history_rss_peak", peak),
            ("history_rss_growth", peak - idle),
        ):
            self._record(Measurement(case, mode, rep, value / MB))

    def _reads(self, rep: int, mode: str, server: Server, pair: list[tuple[str, str]]) -> None:
        """A read and its reference, each from GET_CONNECTIONS for the run's length; which goes first
        alternates between repetitions."""
        for case, path in pair[rep % 2 :] + pair[: rep % 2]:
            config: dict[str, object] = {"kind": "get", "path": path}
            result = self._wrk(server, config, w.GET_CONNECTIONS, f"{case}-{mode}-{rep}")
            self._record(Measurement(case, mode, rep, result.p50_ms, result.p50_ms, None, result))

    def _post(self, rep: int, mode: str, server: Server, store: Store, case: str) -> None:
        """Single posts, one at a time from one connection, to a fresh session: their p95."""
        tokens = store.new_sessions(1)
        _, base = self._next_run()
        config: dict[str, object] = {"kind": "post", "tokens": tokens, "base_time": base}
        result = self._wrk(server, config, 1, f"{case}-{mode}-{rep}", seconds=max(1, self._seconds - 2))
        check = self._check_posts(store, tokens, base, result)
        self._record(Measurement(case, mode, rep, result.p95_ms or math.nan, result.p50_ms, check, result))

    def _readers(self, rep: int, mode: str, server: Server, store: Store, paths: list[str]) -> None:
        """HISTORY_READERS connections reading the paths in turn; the posts start a second after them."""
        outcome: list[WrkResult | BaseException] = []

        def read() -> None:
            try:
                config: dict[str, object] = {"kind": "get", "paths": paths}
                outcome.append(self._wrk(server, config, w.HISTORY_READERS, f"history_readers-{mode}-{rep}"))
            except BaseException as error:  # re-raised below, in the bench's thread
                outcome.append(error)

        readers = threading.Thread(target=read)
        readers.start()
        try:
            time.sleep(1.0)
            self._post(rep, mode, server, store, "history_post_busy")
        finally:
            readers.join()
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        self._record(
            Measurement("history_readers", mode, rep, result.ok_per_second, result.p50_ms, None, result)
        )


def memory(pid: int) -> dict[str, float]:
    """The process's VmRSS (resident now) and VmHWM (its peak so far), in bytes, from /proc."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            figures[key] = float(value.split()[0]) * 1024  # reported in kB
    return figures


def check_answers(url: str, data: HistoryData) -> int:
    """Ask each read once before it is timed (a fast wrong answer is no win); the whole read's buckets.

    The last 10 minutes: the same samples from both sessions, those workload.agent_history made. The
    whole session: one bucket per step holding every sample. The raw read: its 1,000 samples."""
    expected = [{"cpu": cpu, "timestamp": moment} for cpu, moment in _samples(data.end, w.RECENT_SECONDS + 1)]
    for token in (data.long, data.short):
        if _payload(url + data.recent_path(token)) != expected:
            raise BenchError(f"the last {w.RECENT_SECONDS} s of a history session are not the samples stored")
    buckets = _payload(url + data.whole_path())
    counted = sum(bucket["count"] for bucket in buckets)
    first = math.floor(data.first / data.step) * data.step
    if counted != data.count or buckets[0]["timestamp"] != first:
        raise BenchError(
            f"the whole history counts {counted} samples from {buckets[0]['timestamp']}, not {data.count}"
        )
    raw = _payload(url + data.raw_path())
    if [(s["cpu"], s["timestamp"]) for s in raw] != _samples(data.end, w.RAW_REFERENCE):
        raise BenchError(f"the {w.RAW_REFERENCE:,}-sample session does not answer its samples")
    return len(buckets)


def _samples(end: float, count: int) -> list[tuple[float, float]]:
    return [sample for batch in w.agent_history(end, count) for sample in batch]


def _payload(url: str) -> list[dict[str, float]]:
    with urllib.request.urlopen(url, timeout=120) as answer:  # noqa: S310 (our server)
        payload: list[dict[str, float]] = json.loads(answer.read())["payload"]
    return payload
