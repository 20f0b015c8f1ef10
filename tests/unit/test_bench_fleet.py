"""The benchmark's fleet workload (issue 14, bench/fleet.py): a sample's time names the agent and the
request that sent it, every acknowledged sample is looked for by that time, and the report holds the
fleet's p99 against the idle server's p50 and counts every error of every repetition.

The generator's results are made-up JSON of the shape it writes; the storage is perfmon's in-memory
adapter behind the bench's Store, written as a server would write what the requests carried.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from typing import Any

from bench import workload as w
from bench.fleet import Schedule, read_result, request_bytes
from bench.report import Measurement
from bench.run import _check_fleet
from perfmon.domain.model import metric_sample
from tests.unit.test_bench_post_metrics import MemoryStore
from tests.unit.test_bench_report import _render

START = 1_764_540_000.0  # a whole second of late 2025, as a run's start would be
AGENTS = 7
REQUESTS = 4


def test_each_sample_time_names_its_agent_and_request() -> None:
    schedule = Schedule(START, 1000, 30)

    for agent in range(1000):
        for request in range(30):
            assert schedule.request_of(schedule.moment(agent, request)) == (agent, request)


def test_a_time_that_no_request_of_the_schedule_carries_names_none() -> None:
    schedule = Schedule(START, 1000, 30)
    moment = schedule.moment(5, 3)

    assert schedule.request_of(START - 1) is None
    assert schedule.request_of(schedule.moment(0, 30)) is None  # one request past the schedule
    assert schedule.request_of(math.nextafter(moment, math.inf)) is None
    assert schedule.request_of(moment + 0.0004) is None  # between two agents' phases


def test_agents_send_at_phases_spread_over_the_second() -> None:
    schedule = Schedule(START, 4, 2)

    assert [schedule.moment(agent, 1) - START for agent in range(4)] == [1.0, 1.25, 1.5, 1.75]


def test_a_request_is_a_keep_alive_post_of_the_agent_metrics_at_its_due_time() -> None:
    schedule = Schedule(START, AGENTS, REQUESTS)

    request = request_bytes("127.0.0.1", "tok", schedule.moment(3, 2), 2)

    head, _, body = request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /samples HTTP/1.1\r\n")
    assert b"Connection: close" not in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert json.loads(body) == {"hash": "tok", "time": schedule.moment(3, 2), "metrics": w.agent_metrics(2)}


def _output(
    acked: dict[int, list[int]] | None = None,
    not_sent: dict[int, list[int]] | None = None,
    timeouts: int = 0,
    not_stored_one: int = 0,
    statuses: dict[int, int] | None = None,
) -> dict[str, Any]:
    """A generator's JSON: every agent sent every request (but `not_sent`), each answered 200 `{"stored": 1}`
    (but those not in `acked`, when given, and the timeouts)."""
    sent_numbers = {
        agent: [n for n in range(REQUESTS) if n not in (not_sent or {}).get(agent, [])]
        for agent in range(AGENTS)
    }
    acked = acked if acked is not None else sent_numbers
    answers = sum(len(numbers) for numbers in acked.values()) + not_stored_one
    return {
        "start": START,
        "connections": AGENTS,
        "requests_per_connection": REQUESTS,
        "opened_before_start": AGENTS,
        "sent": [len(sent_numbers[agent]) for agent in range(AGENTS)],
        "not_sent": [(not_sent or {}).get(agent, []) for agent in range(AGENTS)],
        "acked": [acked.get(agent, []) for agent in range(AGENTS)],
        "latencies_ms": [[[n, 2.0 + n] for n in acked.get(agent, [])] for agent in range(AGENTS)],
        "send_lags_ms": [0.5] * answers,
        "statuses": {str(k): v for k, v in (statuses or {200: answers}).items()},
        "errors": {"connect": 0, "read": 0, "timeout": timeouts, "unsent": 0},
        "not_stored_one": not_stored_one,
        "late_sends": 0,
        "bytes_received": 0,
        "sending_s": REQUESTS - 1 + (AGENTS - 1) / AGENTS,
        "generator_cpu_s": 0.2,
    }


def _stored(skip: Collection[tuple[int, int]] = ()) -> tuple[MemoryStore, list[str]]:
    """A store holding every request's sample (but those in `skip`), agent i's in session i."""
    store = MemoryStore()
    tokens = store.new_sessions(AGENTS, hosts=True)
    schedule = Schedule(START, AGENTS, REQUESTS)
    for agent in range(AGENTS):
        for request in range(REQUESTS):
            if (agent, request) not in skip:
                sample = metric_sample(schedule.moment(agent, request), w.agent_metrics(request))
                store.samples.append(tokens[agent], [sample])
    return store, tokens


def test_a_fleet_whose_acknowledged_samples_are_all_stored_whole_passes() -> None:
    store, tokens = _stored()

    check = _check_fleet(store, tokens, read_result(_output()))

    assert (check.acknowledged, check.stored, check.lost, check.unexpected) == (28, 28, 0, 0)


def test_an_acknowledged_sample_not_stored_is_lost() -> None:
    store, tokens = _stored(skip={(2, 3)})

    check = _check_fleet(store, tokens, read_result(_output()))

    assert (check.stored, check.lost, check.unexpected) == (27, 1, 0)


def test_a_sample_whose_answer_never_came_is_stored_unacknowledged_not_lost() -> None:
    store, tokens = _stored()
    acked = {agent: list(range(REQUESTS)) for agent in range(AGENTS)}
    acked[4] = [0, 1, 3]  # request 2 timed out

    check = _check_fleet(store, tokens, read_result(_output(acked=acked, timeouts=1)))

    assert (check.acknowledged, check.lost, check.stored_unacknowledged, check.unexpected) == (27, 0, 1, 0)
    assert check.in_flight == 1


def test_a_sample_of_a_request_never_sent_is_unexpected() -> None:
    store, tokens = _stored()  # the server stored agent 1's request 0, which the generator never sent

    check = _check_fleet(store, tokens, read_result(_output(not_sent={1: [0]})))

    assert (check.lost, check.unexpected) == (0, len(w.POST_METRICS))


def test_an_ok_answer_that_does_not_say_stored_1_is_unexpected() -> None:
    store, tokens = _stored()
    acked = {agent: list(range(REQUESTS)) for agent in range(AGENTS)}
    acked[0] = [1, 2, 3]

    check = _check_fleet(store, tokens, read_result(_output(acked=acked, not_stored_one=1)))

    assert (check.lost, check.stored_unacknowledged, check.unexpected) == (0, 1, 1)


def test_the_results_count_what_the_generator_saw() -> None:
    result = read_result(_output(statuses={200: 27, 503: 1}, timeouts=2))

    assert math.isclose(result.sent_per_second, AGENTS)  # as scheduled: 28 sends, 1/7 s apart
    assert (result.sent, result.ok, result.not_ok, result.errors) == (28, 27, 1, 3)
    assert result.socket_errors == {"timeout": 2}


def test_the_p99_is_also_given_without_each_agent_first_request() -> None:
    output = _output()
    # The first request of each session on a fresh server is slow (read from the storage); the rest fast.
    output["latencies_ms"] = [[[0, 500.0], *([n, 2.0] for n in range(1, REQUESTS))] for _ in range(AGENTS)]

    result = read_result(output)

    assert (result.p50_ms, result.p99_ms, result.p99_after_first_ms, result.max_ms) == (
        2.0,
        500.0,
        2.0,
        500.0,
    )


def _fleet_runs(p99s: list[float], timeouts: list[int]) -> list[Measurement]:
    """Repetitions of the fleet in file mode: each an idle p50 of 2 ms and a fleet of the given p99."""
    runs = []
    for rep, (p99, timeout) in enumerate(zip(p99s, timeouts, strict=True)):
        idle = read_result(_output())
        idle.p50_ms = 2.0
        fleet = read_result(_output(timeouts=timeout))
        fleet.p99_ms = p99
        store, tokens = _stored()
        runs += [
            Measurement("fleet_idle", "file", rep, 2.0, 2.0, _check_fleet(store, tokens, idle), idle),
            Measurement("fleet", "file", rep, p99, fleet.p50_ms, _check_fleet(store, tokens, fleet), fleet),
        ]
    return runs


def test_the_fleet_p99_is_held_under_ten_times_the_idle_p50() -> None:
    table, healthy = _render(_fleet_runs([12.0, 30.0], [0, 0]), ["file"])

    assert healthy
    lines = table.splitlines()
    assert "## Fleet: agents posting once a second, open loop" in lines
    assert "| agents (keep-alive connections) | 7 ±0% | — |" in lines
    assert "| p99 ÷ idle p50 | 10.50× | — |" in lines  # 6 and 15: their median
    assert "| fleet file: p99 ÷ idle p50 | < 10.0× | 10.50× | FAIL |" in lines
    assert "| fleet file: samples lost, all repetitions | ≤ 0 samples | 0 samples | PASS |" in lines
    assert "| fleet | file | 56 | 56 | 56 | 0 | 0 | 0 | 0 | 0 | ok |" in lines
    assert "fleet db" not in table


def test_an_error_in_any_repetition_fails_the_fleet_target() -> None:
    table, _ = _render(_fleet_runs([4.0, 4.0, 4.0], [0, 2, 0]), ["file"], reps=3)

    lines = table.splitlines()
    assert "| fleet file: p99 ÷ idle p50 | < 10.0× | 2.00× | PASS |" in lines
    assert (
        "| fleet file: errors (non-2xx, socket errors, timeouts, not sent), all repetitions | ≤ 0 errors "
        "| 2 errors | FAIL |"
    ) in lines
