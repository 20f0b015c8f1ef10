"""Two `perfmon serve --storage file` processes on one data dir behave as one server, their background
maintenance included: samples posted to either are read the same from both, raw and stepped, while
both roll them up and compact them at once, and no sample is counted twice."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from tests.servers import start_server_process

pytestmark = pytest.mark.slow

# Two days ago and before, at noon UTC: closed days, which each server's maintenance compacts.
START = (time.time() // 86400 - 3) * 86400 + 43200.0


def _wait_for_compaction(data_dir: Path, token: str) -> None:
    deadline = time.monotonic() + 30
    while not list((data_dir / "sessions" / token / "cpu").glob("*.csv.xz")):
        assert time.monotonic() < deadline, "neither server compacted the closed days"
        time.sleep(0.2)


def test_two_servers_on_one_data_dir_read_and_roll_up_the_same_samples(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    flags = ("--storage", "file", "--data-dir", str(data_dir), "--maintenance-interval", "1")
    first = start_server_process(*flags)
    try:
        second = start_server_process(*flags)
        try:
            a, b = first.url, second.url
            registered = requests.post(f"{a}/register", json={"user": "both", "passwd": "pw"}, timeout=10)
            token = registered.json()["hash"]
            expected = []
            with requests.Session() as http:
                for i in range(40):
                    batch = [
                        {"cpu": float((i * 7 + j) % 100), "time": START + 3600 * i + j} for j in range(30)
                    ]
                    answer = http.post(
                        f"{(a, b)[i % 2]}/cpu", json={"hash": token, "samples": batch}, timeout=10
                    )
                    assert answer.status_code == 200, answer.text
                    expected.extend({"cpu": s["cpu"], "timestamp": s["time"]} for s in batch)
            _wait_for_compaction(data_dir, token)
            raw = [requests.get(f"{url}/cpu", params={"hash": token}, timeout=10).json() for url in (a, b)]
            hourly = [
                requests.get(f"{url}/cpu", params={"hash": token, "step": 3600}, timeout=10).json()
                for url in (a, b)
            ]
            listed = [
                requests.get(f"{url}/sessions", params={"hash": token}, timeout=10).json() for url in (a, b)
            ]
        finally:
            assert second.stop() == 0
    finally:
        assert first.stop() == 0
    assert raw == [{"payload": expected}] * 2
    assert hourly[0] == hourly[1]
    assert [bucket["count"] for bucket in hourly[0]["payload"]] == [30] * 40
    assert [[(s["samples"], s["first"], s["last"]) for s in listing["payload"]] for listing in listed] == [
        [(1200, START, START + 3600 * 39 + 29)]
    ] * 2
