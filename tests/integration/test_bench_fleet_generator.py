"""The fleet's load generator (bench/fleet.py) is open loop: against a server that answers slower than
the agents post, each request is still timed from when it was due, the ones due before their
connection's previous answer came count as late sends, and every agent keeps its one connection.

The server is a recorder on a free port of 127.0.0.1 that answers each `POST /samples` as perfmon does,
after a delay; the generator runs in a process of its own, as the bench runs it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import workload as w
from bench.fleet import run_fleet
from tests.recording_server import recording_server

pytestmark = pytest.mark.slow

ANSWER_DELAY_SECONDS = 1.2  # longer than the agents' 1 s between posts


@pytest.fixture
def slow_server() -> Iterator[tuple[str, list[tuple[str, int, bytes]]]]:
    with recording_server(delay=ANSWER_DELAY_SECONDS) as server:
        yield server


def test_a_slow_server_shows_as_latency_from_the_schedule_and_as_late_sends(
    tmp_path: Path, slow_server: tuple[str, list[tuple[str, int, bytes]]]
) -> None:
    url, requests = slow_server
    tokens = [str(uuid.uuid4()), str(uuid.uuid4())]

    result = run_fleet(url, tokens, seconds=3, work_dir=tmp_path, name="slow")

    # Each agent: request 0 answered 1.2 s after it was due; request 1, due at 1 s, sent at 1.2 s and
    # answered at 2.4 s (1.4 s late); request 2, due at 2 s, sent at 2.4 s, answered at 3.6 s (1.6 s).
    assert (result.sent, result.ok, result.errors) == (6, 6, 0)
    assert result.late_sends == 4
    assert result.max_ms >= 1.5 * 1000 > ANSWER_DELAY_SECONDS * 1000  # more than any answer took
    assert result.p50_ms >= 1.3 * 1000
    assert len({port for _, port, _ in requests}) == 2  # one keep-alive connection per agent
    assert result.schedule is not None
    for _, _, body in requests:
        sample = json.loads(body)
        request = result.schedule.request_of(sample["time"])
        assert request is not None
        agent, number = request
        assert sample["hash"] == tokens[agent]
        assert sample["metrics"] == w.agent_metrics(number)
    assert result.acknowledged_times() == {json.loads(body)["time"] for _, _, body in requests}
