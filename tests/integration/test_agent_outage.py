"""`perfmon agent` against a real server process on file storage that goes away and comes back.

The agent runs in a thread of the test with a counter for a sampler (cpu = 0, 1, 2, ...), so the stored
samples say exactly what arrived: every sample the agent took must be there once, in order."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from perfmon.agent.adapters.http_client import ServerClient
from perfmon.agent.adapters.spool import Spool
from perfmon.agent.agent import Agent, AgentOptions
from perfmon.agent.sender import RetryPolicy
from perfmon.agent.status import StatusReport
from tests.agent_spool import acknowledged_samples
from tests.servers import ServerProcess, start_server_process

pytestmark = pytest.mark.slow

USER, PASSWORD, HOST = "agent-user", "agent-password-123", "web-1"
INTERVAL = 0.02
OPTIONS = AgentOptions(
    interval=INTERVAL, register=True, retry=RetryPolicy(first=0.05, most=0.2), final_drain_seconds=2
)
WAIT = 10  # seconds any awaited state may take before the test fails


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout} s for {what}")
        time.sleep(0.01)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Counter:
    """The fake machine: cpu 0, 1, 2, ... (and a second metric) so that gaps, duplicates and reordering
    all show."""

    def __init__(self) -> None:
        self.taken = 0

    def __call__(self) -> dict[str, float]:
        value, self.taken = self.taken, self.taken + 1
        return {"cpu": float(value), "load1": value / 4}


@dataclass
class ServedData:
    """One data dir served on one port, by one server process after another."""

    data_dir: Path
    port: int = field(default_factory=_free_port)
    process: ServerProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = start_server_process("--data-dir", str(self.data_dir), "--port", str(self.port))

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedData]:
    served = ServedData(tmp_path / "data")
    served.start()
    yield served
    served.stop()


@dataclass
class RunningAgent:
    agent: Agent
    spool: Spool
    report: StatusReport
    exit_status: list[int]
    thread: threading.Thread

    def pending(self) -> int:
        return self.spool.counts().pending

    def stop(self) -> int:
        self.agent.stop()
        self.thread.join(timeout=WAIT)
        assert not self.thread.is_alive(), "the agent did not stop"
        return self.exit_status[0]


@contextmanager
def running_agent(url: str, spool_dir: Path, sampler: Counter) -> Iterator[RunningAgent]:
    spool = Spool(spool_dir, limit=100_000)
    report = StatusReport()
    agent = Agent(ServerClient(url, USER, PASSWORD, HOST, timeout=2), spool, sampler, report, OPTIONS)
    exit_status: list[int] = []
    thread = threading.Thread(target=lambda: exit_status.append(agent.run()), daemon=True)
    thread.start()
    try:
        yield RunningAgent(agent, spool, report, exit_status, thread)
    finally:
        agent.stop()
        thread.join(timeout=WAIT)
        spool.close()


def _stored(url: str) -> list[tuple[float, float]]:
    """Every (time, cpu) the server holds for the user, across all of the user's sessions, by time."""
    with requests.Session() as http:
        login = http.post(f"{url}/login", json={"user": USER, "passwd": PASSWORD}, timeout=5)
        if login.status_code == 401:
            return []  # not registered yet
        token = login.json()["hash"]
        sessions = http.get(f"{url}/sessions", params={"hash": token}, timeout=5).json()["payload"]
        samples = []
        for session in sessions:
            answer = http.get(f"{url}/cpu", params={"hash": token, "session": session["session"]}, timeout=5)
            samples += [(row["timestamp"], row["cpu"]) for row in answer.json()["payload"]]
    return sorted(samples)


def _assert_every_sample_stored_once_in_order(url: str, taken: int) -> None:
    stored = _stored(url)
    assert [cpu for _, cpu in stored] == [float(n) for n in range(taken)]
    times = [t for t, _ in stored]
    assert all(earlier < later for earlier, later in zip(times, times[1:], strict=False))


def test_samples_taken_while_the_server_is_down_arrive_once_and_in_order_after_it_returns(
    served: ServedData, tmp_path: Path
) -> None:
    sampler = Counter()
    with running_agent(served.url, tmp_path / "spool", sampler) as running:
        _wait_until(lambda: running.report.sent >= 10, "live samples to be sent")

        served.stop()
        outage_start = sampler.taken
        _wait_until(lambda: sampler.taken >= outage_start + 50, "50 samples during the outage")
        assert running.pending() >= 40  # spooled, not lost
        served.start()
        _wait_until(lambda: running.pending() == 0, "the spool to drain")
        _wait_until(lambda: running.report.sent >= outage_start + 60, "live posting to resume")

        assert running.stop() == 0
    _assert_every_sample_stored_once_in_order(served.url, sampler.taken)


def test_a_new_agent_sends_what_the_previous_one_left_in_the_spool(
    served: ServedData, tmp_path: Path
) -> None:
    sampler = Counter()
    with running_agent(served.url, tmp_path / "spool", sampler) as first:
        _wait_until(lambda: first.report.sent >= 5, "live samples to be sent")
        served.stop()
        outage_start = sampler.taken
        _wait_until(lambda: sampler.taken >= outage_start + 20, "20 samples during the outage")
        assert first.stop() == 0
        left_behind = first.pending()
    assert left_behind >= 20

    served.start()
    with running_agent(served.url, tmp_path / "spool", sampler) as second:
        _wait_until(lambda: second.report.sent >= left_behind + 5, "the second agent to send the leftovers")
        assert second.stop() == 0
        assert second.pending() == 0
    _assert_every_sample_stored_once_in_order(served.url, sampler.taken)


def test_the_agent_command_posts_real_cpu_and_exits_0_on_sigterm(served: ServedData, tmp_path: Path) -> None:
    agent = subprocess.Popen(
        [sys.executable, "-m", "perfmon", "agent", "--server", served.url, "--user", USER, "--register"]
        + ["--interval", "0.05", "--spool-dir", str(tmp_path / "spool"), "--host", HOST],
        env={**os.environ, "PERFMON_PASSWORD": PASSWORD},
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Watched through the spool, not by logging in: failed log-ins before the agent has registered
        # would trip the server's login limit (429) for this user.
        spool_dir = tmp_path / "spool"
        _wait_until(
            lambda: agent.poll() is not None or acknowledged_samples(spool_dir) >= 3, "3 acknowledged samples"
        )
        agent.send_signal(signal.SIGTERM)
        _, log = agent.communicate(timeout=WAIT)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()

    assert agent.returncode == 0, log
    assert all(0 <= cpu <= 100 for _, cpu in _stored(served.url))
    assert PASSWORD not in log
    with requests.Session() as http:
        token = http.post(f"{served.url}/login", json={"user": USER, "passwd": PASSWORD}, timeout=5).json()
        sessions = http.get(f"{served.url}/sessions", params={"hash": token["hash"]}, timeout=5).json()
    # Not even a prefix of a session hash: the log names sessions by a digest of theirs.
    assert "logged in as" in log
    assert not any(session["session"][:8] in log for session in sessions["payload"])
