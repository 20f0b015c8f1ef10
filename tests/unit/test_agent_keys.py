"""The agent with a key (PROTOCOL.md part 4) against the in-memory server: an ingest session posts without
the duplicate check it may not make, a revoked or unknown key stops the agent with its own exit status and
keeps every unsent sample, a read key stops it too, a new key sends what the old one left, and the key is
never in a log line."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from perfmon.agent.adapters.spool import Spool
from perfmon.agent.agent import EXIT_KEY_REFUSED, EXIT_STOPPED, Agent, AgentOptions
from perfmon.agent.model import Sample
from perfmon.agent.ports import ServerUnavailable
from perfmon.agent.sender import RetryPolicy, Sender
from perfmon.agent.status import StatusReport
from tests.agent_fakes import FakePerfmon, FakeServer

T0 = 1_700_000_000.0
WAIT = 5  # seconds an awaited state may take before the test fails
OPTIONS = AgentOptions(interval=0.005, retry=RetryPolicy(first=0.01, most=0.05), final_drain_seconds=1)


@pytest.fixture
def perfmon() -> FakePerfmon:
    fake = FakePerfmon()
    FakeServer("alice", "right", fake).create_user()
    return fake


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "spool", limit=100_000) as opened:
        yield opened


def _spool_samples(spool: Spool, cpus: Sequence[float]) -> None:
    for cpu in cpus:
        spool.append(Sample({"cpu": cpu, "mem": 50.0}, T0 + cpu))


def _send_all(sender: Sender, steps: int = 20) -> None:
    for _ in range(steps):
        if not sender.send_one_batch():
            return
    raise AssertionError("the spool never drained")


def _cpus(samples: Sequence[Sample]) -> list[float]:
    return [sample.metrics["cpu"] for sample in samples]


def _spooled(spool: Spool) -> list[float]:
    return _cpus(spool.peek(100_000).samples)


class Counter:
    """The machine: reading n is cpu n, so that a lost, repeated or reordered sample shows; `after` runs
    once, when the reading numbered `at` is taken (a revocation in the middle of a run)."""

    def __init__(self, at: int = -1, after: Callable[[], None] = lambda: None) -> None:
        self.taken: list[float] = []
        self._at, self._after = at, after

    def __call__(self) -> dict[str, float]:
        self.taken.append(float(len(self.taken)))
        if len(self.taken) == self._at:
            self._after()
        return {"cpu": self.taken[-1], "mem": 50.0}


def _run_until_it_stops(server: FakeServer, spool: Spool, machine: Counter) -> int:
    """Run a whole agent until it stops by itself; its exit status."""
    agent = Agent(server, spool, machine, StatusReport(), OPTIONS)
    status: list[int] = []
    runner = threading.Thread(target=lambda: status.append(agent.run()), daemon=True)
    runner.start()
    runner.join(timeout=WAIT)
    if runner.is_alive():
        agent.stop()
        runner.join(timeout=WAIT)
        pytest.fail(f"the agent did not stop by itself within {WAIT} s")
    return status[0]


def _run_until(server: FakeServer, spool: Spool, machine: Counter, enough: Callable[[], bool]) -> int:
    """Run a whole agent until `enough`, then stop it; its exit status."""
    agent = Agent(server, spool, machine, StatusReport(), OPTIONS)
    status: list[int] = []
    runner = threading.Thread(target=lambda: status.append(agent.run()), daemon=True)
    runner.start()
    deadline = time.monotonic() + WAIT
    while not enough() and runner.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    agent.stop()
    runner.join(timeout=WAIT)
    assert not runner.is_alive(), "the agent did not stop"
    return status[0]


def test_an_ingest_key_posts_every_sample_without_reading(perfmon: FakePerfmon, spool: Spool) -> None:
    server = FakeServer.with_key(perfmon.make_key("alice", "ingest"), perfmon)
    _spool_samples(spool, [0, 1, 2])

    _send_all(Sender(server, spool, StatusReport()))

    assert _cpus(server.host_history()) == [0, 1, 2]
    assert spool.counts().pending == 0
    [session] = perfmon.owners
    assert (perfmon.owners[session], perfmon.scopes[session]) == ("alice", "ingest")


def test_with_no_right_to_read_a_batch_whose_answer_was_lost_is_sent_again(
    perfmon: FakePerfmon, spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    server = FakeServer.with_key(perfmon.make_key("alice", "ingest"), perfmon)
    sender = Sender(server, spool, StatusReport())
    _spool_samples(spool, [0])
    with caplog.at_level(logging.INFO):
        _send_all(sender)  # the check at start answers 403: the sender learns it may not read
    _spool_samples(spool, [1, 2])
    server.lose_next_answer = True
    with pytest.raises(ServerUnavailable):
        sender.send_one_batch()
    _spool_samples(spool, [3])

    _send_all(sender)

    # At-least-once, as the README says: the check that would have spared the repeat needs a read (403).
    assert _cpus(server.host_history()) == [0, 1, 1, 2, 2, 3]
    assert "may post but not read" in caplog.text


def test_a_password_session_still_checks_before_resending(perfmon: FakePerfmon, spool: Spool) -> None:
    server = FakeServer("alice", "right", perfmon)
    sender = Sender(server, spool, StatusReport())
    _spool_samples(spool, [0, 1])
    server.lose_next_answer = True
    with pytest.raises(ServerUnavailable):
        sender.send_one_batch()

    _send_all(sender)

    assert _cpus(server.host_history()) == [0, 1]


def test_a_key_revoked_mid_run_stops_the_agent_with_every_unsent_sample_kept(
    perfmon: FakePerfmon, spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    key = perfmon.make_key("alice", "ingest")
    server = FakeServer.with_key(key, perfmon)
    machine = Counter(at=20, after=lambda: perfmon.revoke(key))

    with caplog.at_level(logging.DEBUG):
        status = _run_until_it_stops(server, spool, machine)

    assert status == EXIT_KEY_REFUSED
    stored, unsent = _cpus(server.host_history()), _spooled(spool)
    assert unsent, "the batch the revoked session could not post is still spooled"
    assert stored + unsent == machine.taken  # each sample once: on the server or in the spool
    [message] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "does not accept this key (revoked" in message
    assert "keys page" in message and "PERFMON_AGENT_KEY" in message
    assert "sample(s) unsent" in message
    assert key not in caplog.text


def test_an_unknown_key_at_start_stops_the_agent_before_anything_is_sent(
    perfmon: FakePerfmon, spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    key = perfmon.make_key("alice", "ingest")
    perfmon.revoke(key)
    machine = Counter()

    with caplog.at_level(logging.DEBUG):
        status = _run_until_it_stops(FakeServer.with_key(key, perfmon), spool, machine)

    assert status == EXIT_KEY_REFUSED
    assert perfmon.owners == {}
    assert _spooled(spool) == machine.taken
    assert "log in refused: Wrong credentials or user is not registered" in caplog.text
    assert "check the user and password" not in caplog.text  # a password hint would mislead here
    assert key not in caplog.text


def test_a_read_key_stops_the_agent_at_its_first_post_with_the_samples_kept(
    perfmon: FakePerfmon, spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    key = perfmon.make_key("alice", "read")
    machine = Counter()

    with caplog.at_level(logging.DEBUG):
        status = _run_until_it_stops(FakeServer.with_key(key, perfmon), spool, machine)

    assert status == EXIT_KEY_REFUSED
    assert _cpus(FakeServer("alice", "right", perfmon).host_history()) == []
    assert _spooled(spool) == machine.taken
    [message] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "server answered 403: Forbidden" in message and "may not post" in message
    assert "make a new ingest key" in message
    assert key not in caplog.text


def test_a_new_key_sends_what_the_revoked_one_left_and_each_sample_is_stored_once(
    perfmon: FakePerfmon, spool: Spool
) -> None:
    old = perfmon.make_key("alice", "ingest")
    machine = Counter(at=20, after=lambda: perfmon.revoke(old))
    assert _run_until_it_stops(FakeServer.with_key(old, perfmon), spool, machine) == EXIT_KEY_REFUSED
    left = len(_spooled(spool))
    server = FakeServer.with_key(perfmon.make_key("alice", "ingest"), perfmon)
    target = len(machine.taken) + 5  # what the first run took, and 5 of the new one's own

    status = _run_until(server, spool, machine, lambda: len(server.host_history()) >= target)

    assert status == EXIT_STOPPED
    assert left > 0
    assert _cpus(server.host_history()) == machine.taken
    assert spool.counts().pending == 0
