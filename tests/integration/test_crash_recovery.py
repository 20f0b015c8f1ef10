"""A 200 means stored: kill -9 the server after acknowledged posts, restart it, find every sample."""

from __future__ import annotations

import signal

import pytest
import requests

from tests.servers import start_server_process

pytestmark = pytest.mark.slow


def test_kill_9_after_500_acknowledged_posts_loses_none(server_flags: list[str]) -> None:
    first = start_server_process(*server_flags)
    try:
        token = requests.post(
            f"{first.url}/register", json={"user": "crash-test", "passwd": "pw"}, timeout=10
        ).json()["hash"]
        acknowledged = 0
        with requests.Session() as http:
            for i in range(500):
                answer = http.post(
                    f"{first.url}/cpu", json={"hash": token, "cpu": i / 7, "time": 1e9 + i}, timeout=10
                )
                acknowledged += answer.status_code == 200
    finally:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
    assert acknowledged == 500

    second = start_server_process(*server_flags)
    try:
        payload = requests.get(f"{second.url}/cpu", params={"hash": token}, timeout=30).json()["payload"]
    finally:
        assert second.stop() == 0
    assert payload == [{"cpu": i / 7, "timestamp": 1e9 + i} for i in range(500)]


def test_sigterm_stops_the_server_cleanly(server_flags: list[str]) -> None:
    server = start_server_process(*server_flags)
    assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
    assert server.stop() == 0
    assert any("perfmon stopped" in line for line in server.log)
