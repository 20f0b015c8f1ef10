"""The agent's sending side against an in-memory server: order, no resend of what the host holds,
re-login, bad samples."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from perfmon.agent.adapters.spool import Spool
from perfmon.agent.agent import Agent, AgentOptions
from perfmon.agent.model import Sample
from perfmon.agent.ports import ServerUnavailable
from perfmon.agent.sender import RetryPolicy, Sender
from perfmon.agent.status import StatusReport
from tests.agent_fakes import FakeServer


@pytest.fixture
def server() -> FakeServer:
    fake = FakeServer()
    fake.create_user()
    return fake


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "spool", limit=1000) as opened:
        yield opened


def _spool_samples(spool: Spool, cpus: Sequence[float], start: int = 0) -> None:
    for n, cpu in enumerate(cpus, start):
        spool.append(Sample({"cpu": cpu, "mem": 50.0 + cpu}, 1_700_000_000.0 + n))


def _sender(server: FakeServer, spool: Spool, **options: bool) -> Sender:
    return Sender(server, spool, StatusReport(), **options)


def _send_all(sender: Sender, steps: int = 20) -> None:
    for _ in range(steps):
        if not sender.send_one_batch():
            return
    raise AssertionError("the spool never drained")


def test_spooled_samples_are_sent_oldest_first_and_leave_the_spool(server: FakeServer, spool: Spool) -> None:
    _spool_samples(spool, [0, 1, 2])

    _send_all(_sender(server, spool))

    assert server.all_cpus() == [0, 1, 2]
    assert spool.counts().pending == 0


def test_a_batch_whose_answer_was_lost_is_not_sent_twice(server: FakeServer, spool: Spool) -> None:
    sender = _sender(server, spool)
    _spool_samples(spool, [0, 1])
    server.lose_next_answer = True
    with pytest.raises(ServerUnavailable):
        sender.send_one_batch()
    _spool_samples(spool, [2], start=2)

    _send_all(sender)

    assert server.all_cpus() == [0, 1, 2]


def test_a_new_agent_does_not_resend_what_an_earlier_one_sent_but_never_acknowledged(
    server: FakeServer, spool: Spool
) -> None:
    _spool_samples(spool, [0, 1, 2])
    token = server.log_in()
    server.post_samples(token, spool.peek(2).samples)  # then the earlier agent died

    _send_all(_sender(server, spool))

    assert server.all_cpus() == [0, 1, 2]


def test_an_expired_session_means_logging_in_again_with_no_sample_lost(
    server: FakeServer, spool: Spool
) -> None:
    sender = _sender(server, spool)
    _spool_samples(spool, [0])
    _send_all(sender)
    server.forget_sessions()
    _spool_samples(spool, [1, 2], start=1)

    _send_all(sender)

    assert server.all_cpus() == [0, 1, 2]


def test_a_sample_the_server_refuses_is_quarantined_and_the_others_are_sent(
    server: FakeServer, spool: Spool
) -> None:
    _spool_samples(spool, [0, 1, -5, 3])

    _send_all(_sender(server, spool))

    assert server.all_cpus() == [0, 1, 3]
    assert spool.counts().quarantined == 1


def test_a_batch_too_large_for_the_server_is_split(server: FakeServer, spool: Spool) -> None:
    server.largest_batch = 2
    _spool_samples(spool, range(5))

    _send_all(_sender(server, spool))

    assert server.all_cpus() == [0, 1, 2, 3, 4]


def test_registering_a_known_user_logs_in_instead(server: FakeServer, spool: Spool) -> None:
    _spool_samples(spool, [0])

    _send_all(_sender(server, spool, register=True))

    assert server.all_cpus() == [0]


def test_nothing_leaves_the_spool_while_the_server_is_down(server: FakeServer, spool: Spool) -> None:
    server.down = True
    _spool_samples(spool, [0, 1])

    with pytest.raises(ServerUnavailable):
        _sender(server, spool).send_one_batch()

    assert spool.counts().pending == 2


def _run_agent(
    server: FakeServer,
    spool: Spool,
    stop_after_samples: int,
    last_reading_seconds: float = 0.0,
    register: bool = False,
) -> tuple[int, list[float]]:
    """Run a whole agent on a counter for a sampler; stop it once it has sampled enough. The last reading
    may take a while, so that stop() comes while the sampler is still taking it."""
    taken: list[float] = []
    result: list[int] = []
    enough = threading.Event()

    def read_metrics() -> dict[str, float]:
        taken.append(float(len(taken)))
        if len(taken) >= stop_after_samples:
            enough.set()
            time.sleep(last_reading_seconds)
        return {"cpu": taken[-1], "load1": 0.5}

    retry = RetryPolicy(first=0.01, most=0.05)
    options = AgentOptions(interval=0.005, retry=retry, final_drain_seconds=1, register=register)
    agent = Agent(server, spool, read_metrics, StatusReport(), options)
    runner = threading.Thread(target=lambda: result.append(agent.run()))
    runner.start()
    assert enough.wait(timeout=5)
    agent.stop()
    runner.join(timeout=5)
    assert not runner.is_alive()
    return result[0], taken


def test_an_agent_stopped_cleanly_has_sent_every_sample_it_took(server: FakeServer, spool: Spool) -> None:
    status, taken = _run_agent(server, spool, stop_after_samples=20)

    assert status == 0
    assert server.all_cpus() == taken


def test_the_reading_taken_as_the_agent_stops_is_sent_with_the_rest(server: FakeServer, spool: Spool) -> None:
    status, taken = _run_agent(server, spool, stop_after_samples=5, last_reading_seconds=0.3)

    assert status == 0
    assert server.all_cpus() == taken


def test_wrong_credentials_stop_the_agent_and_keep_the_samples(server: FakeServer, spool: Spool) -> None:
    server.password = "changed"

    status, taken = _run_agent(server, spool, stop_after_samples=1)

    assert status == 1
    assert server.all_cpus() == []
    assert spool.counts().pending == len(taken)


@pytest.mark.parametrize("register", [False, True])
def test_after_refused_credentials_the_summary_names_the_refusal_as_the_last_error(
    server: FakeServer, spool: Spool, caplog: pytest.LogCaptureFixture, register: bool
) -> None:
    server.password = "changed"

    with caplog.at_level(logging.INFO):
        status, _ = _run_agent(server, spool, stop_after_samples=1, register=register)

    assert status == 1
    [summary] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("agent stopped")]
    assert "last error: log in refused: Wrong credentials or user is not registered" in summary
    # Without --register, the usual cause of a first run's refusal is named; with it, --register is no cure.
    assert ("or add --register" in summary) is not register


def test_the_duplicate_check_needs_every_metric_of_a_sample_stored_on_this_host(spool: Spool) -> None:
    ours = FakeServer(host="web-1")
    ours.create_user()
    theirs = FakeServer(host="web-2", perfmon=ours.perfmon)
    ours.post_samples(ours.log_in(), [Sample({"cpu": 0.0}, 1_700_000_000.0)])  # mem missing
    theirs.post_samples(theirs.log_in(), [Sample({"cpu": 1.0, "mem": 51.0}, 1_700_000_001.0)])  # other host
    _spool_samples(spool, [0, 1])

    _send_all(_sender(ours, spool))

    assert [s.metrics for s in ours.host_history()] == [
        {"cpu": 0.0},
        {"cpu": 0.0, "mem": 50.0},
        {"cpu": 1.0, "mem": 51.0},
    ]


def test_a_restarted_agent_adds_to_the_same_hosts_history_in_a_new_session(
    server: FakeServer, spool: Spool
) -> None:
    _spool_samples(spool, [0, 1])
    _send_all(_sender(server, spool))
    _spool_samples(spool, [2, 3], start=2)

    _send_all(_sender(server, spool))  # a new agent: it logs in again

    assert len(server.perfmon.owners) == 2
    assert set(server.perfmon.hosts.values()) == {"web-1"}
    assert [s.metrics["cpu"] for s in server.host_history()] == [0, 1, 2, 3]
