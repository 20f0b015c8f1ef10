"""The benchmark's post-metrics workload (issue 12): the agent's 12 metrics per POST /samples, and the check
that every acknowledged request's sample is stored whole, each metric with the value its request carried.

The storage is the in-memory reference adapter behind bench/stores.py's Store, written as a server would
write what wrk's requests carried; the run's answers are a made-up WrkResult.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable

from hypothesis import given
from hypothesis import strategies as st

from bench import workload as w
from bench.processes import WrkResult
from bench.run import _check_post_metrics
from bench.stores import Store
from perfmon.adapters.memory import (
    InMemorySampleRepository,
    InMemorySessionRepository,
    InMemoryUserRepository,
)
from perfmon.domain.model import CATALOGUE, metric_sample

BASE = w.run_time_base(3)
THREADS = 2


class MemoryStore(Store):
    """The bench's Store over perfmon's in-memory adapters."""

    kind = "memory"

    def __init__(self) -> None:
        sessions = InMemorySessionRepository()
        self.sessions = sessions
        self.users = InMemoryUserRepository(sessions)
        self.samples = InMemorySampleRepository(sessions)


def _time(thread: int, request: int) -> float:
    """The time that workload.lua gives request `request` of wrk thread `thread`."""
    return float(f"{BASE + thread * w.THREAD_TIME_SPAN + request + 0.25:.2f}")


def _token(tokens: list[str], thread: int, request: int) -> str:
    """The session that workload.lua sends that request to."""
    return tokens[(thread + request * THREADS) % len(tokens)]


def _result(sent: dict[int, int], ok: int, acked: int | None = None) -> WrkResult:
    return WrkResult(
        duration_s=1.0,
        requests=ok,
        bytes_received=0,
        statuses={200: ok},
        socket_errors={"connect": 0, "read": 0, "write": 0, "timeout": 0},
        p50_ms=1.0,
        p90_ms=1.0,
        p99_ms=1.0,
        sent_by_thread=sent,
        acked=["1"] * (ok if acked is None else acked),
    )


def _stored_run(
    sent: dict[int, int], skip: Collection[tuple[int, int]] = ()
) -> tuple[MemoryStore, list[str]]:
    """A store holding every request's sample (but those in `skip`), as the server stores them."""
    store = MemoryStore()
    tokens = store.new_sessions(w.POST_SESSIONS, hosts=True)
    for thread, count in sent.items():
        for request in range(count):
            if (thread, request) not in skip:
                sample = metric_sample(_time(thread, request), w.agent_metrics(request))
                store.samples.append(_token(tokens, thread, request), [sample])
    return store, tokens


def test_the_metrics_are_the_catalogue_the_agent_sends() -> None:
    assert tuple(CATALOGUE) == w.POST_METRICS
    assert tuple(w.agent_metrics(0)) == w.POST_METRICS


@given(st.integers(min_value=0, max_value=2_000_000))
def test_every_request_carries_readings_that_the_server_accepts(request: int) -> None:
    metrics = w.agent_metrics(request)

    metric_sample(_time(1, request), metrics)  # the catalogue's rules: raises on a bad reading
    assert 0 <= metrics["cpu"] <= 100 and 0 <= metrics["mem"] <= 100 and 0 <= metrics["disk"] <= 100
    assert 20 <= metrics["temp"] <= 70
    assert json.loads(json.dumps(metrics)) == metrics  # what a JSON body carries, exactly


@given(st.integers(min_value=0, max_value=2_000_000), st.integers(min_value=1, max_value=1000))
def test_no_two_requests_of_a_thread_carry_the_same_metrics(request: int, later: int) -> None:
    assert w.agent_metrics(request) != w.agent_metrics(request + later)


def test_a_run_whose_acknowledged_samples_are_all_stored_whole_passes() -> None:
    sent = {0: 40, 1: 38}
    store, tokens = _stored_run(sent)

    # 76 answered, 2 in flight when wrk stopped: stored too.
    check = _check_post_metrics(store, tokens, BASE, _result(sent, ok=76))

    assert (check.acknowledged, check.stored, check.lost) == (76, 78, 0)
    assert (check.stored_unacknowledged, check.in_flight, check.unexpected) == (2, 2, 0)


def test_a_missing_sample_is_lost() -> None:
    sent = {0: 40, 1: 38}
    store, tokens = _stored_run(sent, skip={(0, 7), (1, 37)})

    check = _check_post_metrics(store, tokens, BASE, _result(sent, ok=78))

    assert (check.stored, check.lost, check.unexpected) == (76, 2, 0)


def test_a_sample_missing_a_metric_is_lost_and_unexpected() -> None:
    sent = {0: 10, 1: 10}
    store, tokens = _stored_run(sent, skip={(1, 4)})
    partial = {name: value for name, value in w.agent_metrics(4).items() if name != "temp"}
    store.samples.append(_token(tokens, 1, 4), [metric_sample(_time(1, 4), partial)])

    check = _check_post_metrics(store, tokens, BASE, _result(sent, ok=20), settle_seconds=0)

    assert (check.stored, check.lost, check.unexpected) == (20, 1, 1)


def test_a_wrong_value_a_duplicate_or_a_time_no_request_carried_is_unexpected() -> None:
    sent = {0: 10, 1: 10}
    store, tokens = _stored_run(sent, skip={(0, 2)})
    wrong = {**w.agent_metrics(2), "net_rx": w.agent_metrics(3)["net_rx"]}
    store.samples.append(_token(tokens, 0, 2), [metric_sample(_time(0, 2), wrong)])
    store.samples.append(_token(tokens, 1, 5), [metric_sample(_time(1, 5), w.agent_metrics(5))])
    store.samples.append(_token(tokens, 0, 0), [metric_sample(_time(0, 10), w.agent_metrics(10))])

    check = _check_post_metrics(store, tokens, BASE, _result(sent, ok=20), settle_seconds=0)

    # (0, 2): one wrong metric, 11 right ones (stored in part); (1, 5): 12 metrics stored twice;
    # thread 0's request 10 was never sent: 12 metrics no request carried.
    assert check.lost == 1
    assert check.unexpected == 1 + 1 + 12 + 12


def test_an_ok_answer_that_does_not_say_stored_1_is_unexpected() -> None:
    sent = {0: 5, 1: 5}
    store, tokens = _stored_run(sent)

    check = _check_post_metrics(store, tokens, BASE, _result(sent, ok=10, acked=9))

    assert (check.lost, check.unexpected) == (0, 1)


class StillStoringStore(MemoryStore):
    """A server still storing a request in flight when wrk stopped: the sample's `temp` arrives only
    after the check's first read of the 12 series."""

    def __init__(self) -> None:
        super().__init__()
        self.late: tuple[str, float, float] | None = None  # (session, time, temp) of the late metric
        self.reads = 0

    def stored_points(
        self, tokens: Iterable[str], metric: str, start: float, end: float
    ) -> list[tuple[float, float]]:
        points = super().stored_points(tokens, metric, start, end)
        self.reads += 1
        if self.reads == len(w.POST_METRICS) and self.late is not None:
            token, moment, temp = self.late
            self.samples.append(token, [metric_sample(moment, {"temp": temp})])
        return points


def test_a_sample_still_being_stored_when_the_check_reads_is_read_again() -> None:
    sent = {0: 10, 1: 10}
    store = StillStoringStore()
    tokens = store.new_sessions(w.POST_SESSIONS, hosts=True)
    for thread, count in sent.items():
        for request in range(count):
            metrics = w.agent_metrics(request)
            if (thread, request) == (1, 9):  # in flight: all but temp stored when the check first reads
                store.late = (_token(tokens, 1, 9), _time(1, 9), metrics["temp"])
                metrics = {name: value for name, value in metrics.items() if name != "temp"}
            store.samples.append(
                _token(tokens, thread, request), [metric_sample(_time(thread, request), metrics)]
            )

    check = _check_post_metrics(store, tokens, BASE, _result(sent, ok=19))

    assert store.reads == 2 * len(w.POST_METRICS)
    assert (check.stored, check.lost, check.stored_unacknowledged, check.unexpected) == (20, 0, 1, 0)
