"""Agents on hosts against a real server, on each storage (PROTOCOL.md part 3): multi-metric samples
posted with --host, and a host's history that stays one series across a restart of its agent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from perfmon.agent.adapters.http_client import ServerClient
from perfmon.agent.adapters.spool import Spool
from perfmon.agent.agent import Agent, AgentOptions
from perfmon.agent.model import CATALOGUE
from perfmon.agent.sender import RetryPolicy
from perfmon.agent.status import StatusReport
from tests.agent_spool import acknowledged_samples

USER, PASSWORD = "fleet-user", "fleet-password-123"
OPTIONS = AgentOptions(
    interval=0.02, register=True, retry=RetryPolicy(first=0.05, most=0.2), final_drain_seconds=2
)
WAIT = 15  # seconds any awaited state may take before the test fails
# Every machine has these; the rates and temp depend on its disks, interfaces and sensors.
GAUGES = {"cpu", "mem", "swap", "load1", "load5", "load15", "disk"}


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {WAIT} s for {what}")
        time.sleep(0.01)


class CountingMachine:
    """A fake machine for one host: reading n is cpu n, mem n / 2 and a negative temp, so that a gap, a
    duplicate or a seam in the host's history shows."""

    def __init__(self) -> None:
        self.taken = 0

    def __call__(self) -> dict[str, float]:
        n, self.taken = self.taken, self.taken + 1
        return {"cpu": float(n), "mem": n / 2, "temp": -float(n)}


@contextmanager
def running_agent(url: str, host: str, spool_dir: Path, machine: CountingMachine) -> Iterator[StatusReport]:
    """An agent for the host in a thread of the test, stopped cleanly (its spool drained) on leaving."""
    report = StatusReport()
    with Spool(spool_dir, limit=100_000) as spool:
        client = ServerClient(url, USER, PASSWORD, host, timeout=5)
        agent = Agent(client, spool, machine, report, OPTIONS)
        exit_status: list[int] = []
        thread = threading.Thread(target=lambda: exit_status.append(agent.run()), daemon=True)
        thread.start()
        try:
            yield report
        finally:
            agent.stop()
            thread.join(timeout=WAIT)
        assert not thread.is_alive(), "the agent did not stop"
        assert exit_status == [0]
        assert spool.counts().pending == 0


def _read(url: str, path: str, **params: Any) -> Any:
    with requests.Session() as http:
        token = http.post(f"{url}/login", json={"user": USER, "passwd": PASSWORD}, timeout=5).json()["hash"]
        answer = http.get(f"{url}{path}", params={"hash": token, **params}, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()["payload"]


def test_two_hosts_keep_exact_continuous_histories_across_a_restart_of_one_agent(
    server_url: str, tmp_path: Path
) -> None:
    web1, web2 = CountingMachine(), CountingMachine()
    with running_agent(server_url, "web-2", tmp_path / "spool-2", web2) as second:
        with running_agent(server_url, "web-1", tmp_path / "spool-1", web1) as first:
            _wait_until(lambda: first.sent >= 10, "web-1's first agent to send 10 samples")
        restarted_at = web1.taken
        with running_agent(server_url, "web-1", tmp_path / "spool-1", web1) as again:
            _wait_until(lambda: again.sent >= 10, "web-1's restarted agent to send 10 samples")
        _wait_until(lambda: second.sent >= 10, "web-2's agent to send 10 samples")
    assert 10 <= restarted_at < web1.taken

    hosts = _read(server_url, "/hosts")
    assert [(row["host"], row["sessions"]) for row in hosts] == [("web-1", 2), ("web-2", 1)]
    for host, machine in (("web-1", web1), ("web-2", web2)):
        series = _read(server_url, "/samples", host=host, metric=["cpu", "mem", "temp"])
        assert [row["value"] for row in series["cpu"]] == [float(n) for n in range(machine.taken)]
        assert [row["value"] for row in series["mem"]] == [n / 2 for n in range(machine.taken)]
        assert [row["value"] for row in series["temp"]] == [-float(n) for n in range(machine.taken)]
        times = [row["timestamp"] for row in series["cpu"]]
        assert all(earlier < later for earlier, later in zip(times, times[1:], strict=False))
        assert [row["timestamp"] for row in series["mem"]] == times


def _run_command_until(url: str, spool_dir: Path, disk_path: Path, acknowledged: int) -> str:
    """`perfmon agent --host web-1` as a user runs it, until the spool says `acknowledged` samples have
    been acknowledged in all; SIGTERM then; its log."""
    agent = subprocess.Popen(
        [sys.executable, "-m", "perfmon", "agent", "--server", url, "--user", USER, "--register"]
        + ["--host", "web-1", "--disk-path", str(disk_path), "--interval", "0.05"]
        + ["--spool-dir", str(spool_dir)],
        env={**os.environ, "PERFMON_PASSWORD": PASSWORD},
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until(
            lambda: agent.poll() is not None or acknowledged_samples(spool_dir) >= acknowledged,
            f"{acknowledged} acknowledged samples",
        )
        agent.send_signal(signal.SIGTERM)
        _, log = agent.communicate(timeout=WAIT)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    assert agent.returncode == 0, log
    return log


@pytest.mark.slow
def test_the_agent_command_posts_the_catalogue_for_its_host_and_a_restart_continues_the_history(
    server_url: str, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    first_log = _run_command_until(server_url, spool_dir, tmp_path, acknowledged=3)
    second_log = _run_command_until(
        server_url, spool_dir, tmp_path, acknowledged=acknowledged_samples(spool_dir) + 3
    )
    sent = acknowledged_samples(spool_dir)  # every sample of both runs: the spool was drained at each stop

    [host] = _read(server_url, "/hosts")
    assert (host["host"], host["sessions"]) == ("web-1", 2)
    assert GAUGES <= set(host["latest"]) <= set(CATALOGUE)
    series = _read(server_url, "/samples", host="web-1", metric=list(CATALOGUE))
    # mem is in every reading: one row per sample taken by either run, no gap, no duplicate.
    assert len(series["mem"]) == sent
    times = [row["timestamp"] for row in series["mem"]]
    assert all(earlier < later for earlier, later in zip(times, times[1:], strict=False))
    for name in GAUGES - {"cpu"}:
        assert [row["timestamp"] for row in series[name]] == times, name
    assert all(row["value"] >= 0 for name, rows in series.items() if name != "temp" for row in rows), (
        "a negative value"
    )
    assert all(0 <= row["value"] <= 100 for name in ("cpu", "mem", "swap", "disk") for row in series[name])
    assert "web-1" in first_log and PASSWORD not in first_log + second_log
