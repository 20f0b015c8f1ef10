"""`perfmon agent` with an ingest key (PROTOCOL.md part 4) as a real process against a real server, in
each storage mode: the key is revoked mid-run, and the agent must stop by itself with its documented
status and message, with every sample the server acknowledged stored once and every later one still in
its spool; a new key then sends that spool.

The agent runs with its default spool folder (per server and host with a key, under XDG_STATE_HOME), so
that the second run finds the first one's samples as a deployed agent would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from perfmon.agent import command
from perfmon.agent.adapters.spool import Spool
from perfmon.agent.agent import EXIT_KEY_REFUSED, EXIT_STOPPED, KEY_VARIABLE
from tests.agent_spool import acknowledged_samples

pytestmark = pytest.mark.slow

USER, PASSWORD, HOST = "keyed-user", "keyed-password-123", "web-1"
WAIT = 20  # seconds any awaited state may take before the test fails


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {WAIT} s for {what}")
        time.sleep(0.02)


@dataclass(frozen=True)
class IngestKey:
    text: str
    id: str


class Account:
    """The user's side, over HTTP with the password: keys made and revoked as on the keys page, and the
    host's stored history read back."""

    def __init__(self, url: str) -> None:
        self.url = url
        answer = requests.post(f"{url}/register", json={"user": USER, "passwd": PASSWORD}, timeout=5)
        assert answer.status_code == 200, answer.text
        self.token = answer.json()["hash"]

    def make_key(self, name: str) -> IngestKey:
        body = {"hash": self.token, "scope": "ingest", "name": name}
        made = requests.post(f"{self.url}/keys", json=body, timeout=5)
        assert made.status_code == 200, made.text
        return IngestKey(made.json()["key"], made.json()["id"])

    def revoke(self, key: IngestKey) -> None:
        gone = requests.delete(f"{self.url}/keys/{key.id}", params={"hash": self.token}, timeout=5)
        assert gone.status_code == 200, gone.text

    def stored_times(self) -> list[float]:
        """The time of every `mem` value the server holds for the host, every session merged, oldest
        first (`mem` is in every sample the agent takes; `cpu` may be missing from one)."""
        params = {"hash": self.token, "host": HOST, "metric": "mem"}
        answer = requests.get(f"{self.url}/samples", params=params, timeout=5)
        if answer.status_code == 404:
            return []  # no session on the host yet
        assert answer.status_code == 200, answer.text
        return [row["timestamp"] for row in answer.json()["payload"]["mem"]]


@pytest.fixture
def account(server_url: str) -> Account:
    return Account(server_url)


@dataclass
class AgentProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def agent_process(url: str, key: IngestKey, state: Path, log_path: Path) -> Iterator[AgentProcess]:
    """`perfmon agent` as deployed: the key in PERFMON_AGENT_KEY, no --user, the default spool folder.
    Killed (this one process, by its PID) if the test leaves it running."""
    environ = {name: value for name, value in os.environ.items() if name != command.PASSWORD_VARIABLE}
    environ.update({KEY_VARIABLE: key.text, "XDG_STATE_HOME": str(state)})
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "perfmon", "agent", "--server", url, "--host", HOST]
            + ["--interval", "0.05", "--disk-path", str(state.parent)],
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        yield AgentProcess(process, log_path)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=WAIT)


def _exit_status(agent: AgentProcess) -> int:
    try:
        return agent.process.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the agent did not exit by itself within {WAIT} s; its log:\n{agent.log()}")


def _spooled_times(spool_dir: Path) -> list[float]:
    """The times of the samples the spool still holds, oldest first (the agent has exited: the folder is
    free to open)."""
    with Spool(spool_dir, limit=command.DEFAULT_SPOOL_LIMIT) as spool:
        return [sample.taken_at for sample in spool.peek(command.DEFAULT_SPOOL_LIMIT).samples]


def test_a_revoked_key_stops_the_agent_with_its_samples_kept_and_a_new_key_sends_them(
    server_url: str, account: Account, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    spool_dir = command.default_spool_dir(server_url, None, HOST, {"XDG_STATE_HOME": str(state)})
    first_key = account.make_key("web-1 agent")

    with agent_process(server_url, first_key, state, tmp_path / "first.log") as first:
        _wait_until(
            lambda: first.process.poll() is not None or acknowledged_samples(spool_dir) >= 10,
            "10 samples acknowledged with the key",
        )
        account.revoke(first_key)
        revoked_at = time.time()  # every sample taken after this is posted after the revocation
        status = _exit_status(first)
    log = first.log()

    assert status == EXIT_KEY_REFUSED, log
    assert "the server does not accept this key (revoked" in log
    assert "make a new ingest key on the dashboard's keys page" in log and "PERFMON_AGENT_KEY" in log
    assert first_key.text not in log and first_key.text[4:20] not in log

    stored, unsent = account.stored_times(), _spooled_times(spool_dir)
    # Every sample the server acknowledged is stored once, and nothing else is.
    assert len(stored) == len(set(stored)) == acknowledged_samples(spool_dir) >= 10
    # The rest, those taken after the revocation among them, are still in the spool, none of them stored.
    assert unsent, "the samples the revoked key could not send are kept"
    assert not set(unsent) & set(stored)
    assert max(stored) < min(unsent)
    assert all(taken <= revoked_at for taken in stored)

    second_key = account.make_key("web-1 agent, rotated")
    with agent_process(server_url, second_key, state, tmp_path / "second.log") as second:
        _wait_until(
            lambda: second.process.poll() is not None or set(unsent) <= set(account.stored_times()),
            "the new key to send what the revoked one left",
        )
        second.process.send_signal(signal.SIGTERM)
        assert _exit_status(second) == EXIT_STOPPED, second.log()

    after = account.stored_times()
    assert len(after) == len(set(after)), "each sample stored once"
    assert set(stored) | set(unsent) <= set(after)
    assert _spooled_times(spool_dir) == []
    assert second_key.text not in second.log()
