"""PROTOCOL.md part 2 over real HTTP to a waitress server, in both storage modes."""

from __future__ import annotations

import csv
import io
import uuid

import requests

UNKNOWN = "3f1c1b7e-8a1d-4c55-9a7e-0d9f0b6f5a21"


def _account(url: str) -> tuple[str, str]:
    name = f"user-{uuid.uuid4().hex[:8]}"
    answer = requests.post(f"{url}/register", json={"user": name, "passwd": "pw"}, timeout=10)
    assert answer.status_code == 200
    return name, answer.json()["hash"]


def _read(url: str, token: str, **params: object) -> requests.Response:
    return requests.get(f"{url}/cpu", params={"hash": token, **params}, timeout=60)


def _batch(size: int, start: float = 1_700_000_000.0) -> list[dict[str, float]]:
    return [{"cpu": (i * 37 % 1000) / 10, "time": start + i} for i in range(size)]


def test_a_batch_of_ten_thousand_is_stored_with_one_request(server_url: str) -> None:
    _, token = _account(server_url)
    batch = _batch(10_000)
    answer = requests.post(f"{server_url}/cpu", json={"hash": token, "samples": batch}, timeout=60)
    assert (answer.status_code, answer.json()) == (200, {"stored": 10_000})
    payload = _read(server_url, token).json()["payload"]
    assert payload == [{"cpu": s["cpu"], "timestamp": s["time"]} for s in batch]


def test_a_bad_sample_at_index_9999_stores_none(server_url: str) -> None:
    _, token = _account(server_url)
    batch = _batch(10_000)
    batch[9_999] = {"cpu": -1.0, "time": 1.0}
    answer = requests.post(f"{server_url}/cpu", json={"hash": token, "samples": batch}, timeout=60)
    assert answer.status_code == 400 and answer.json()["reason"].startswith("Bad arguments: samples[9999] ")
    assert _read(server_url, token).json() == {"payload": []}


def test_sessions_and_reading_another_session_of_the_same_user(server_url: str) -> None:
    name, first = _account(server_url)
    requests.post(f"{server_url}/cpu", json={"hash": first, "samples": _batch(3, 100.0)}, timeout=10)
    second = requests.post(f"{server_url}/login", json={"user": name, "passwd": "pw"}, timeout=10).json()[
        "hash"
    ]
    listed = requests.get(f"{server_url}/sessions", params={"hash": second}, timeout=10).json()["payload"]
    assert [(s["session"], s["samples"], s["first"], s["last"]) for s in listed] == [
        (second, 0, None, None),
        (first, 3, 100.0, 102.0),
    ]
    assert listed[0]["created"] >= listed[1]["created"]
    assert len(_read(server_url, second, session=first).json()["payload"]) == 3


def test_another_users_session_is_404_indistinguishable_from_none(server_url: str) -> None:
    _, alices = _account(server_url)
    requests.post(f"{server_url}/cpu", json={"hash": alices, "cpu": 1.0, "time": 1.0}, timeout=10)
    _, bobs = _account(server_url)
    answers = [_read(server_url, bobs, session=session) for session in (alices, UNKNOWN)]
    assert [(a.status_code, a.json()) for a in answers] == [(404, {"reason": "No such session"})] * 2
    assert requests.get(f"{server_url}/sessions", params={"hash": UNKNOWN}, timeout=10).status_code == 401


def test_step_returns_buckets_computed_by_the_storage(server_url: str) -> None:
    _, token = _account(server_url)
    batch = [{"cpu": float(i % 10), "time": 1_700_000_000.0 + i} for i in range(600)]
    requests.post(f"{server_url}/cpu", json={"hash": token, "samples": batch}, timeout=30)
    buckets = _read(server_url, token, step=60).json()["payload"]
    assert len(buckets) == 11  # 1_700_000_000 is 20 s into its minute: 40 + 9 x 60 + 20 samples
    assert buckets[0] == {
        "timestamp": 1_699_999_980.0,
        "cpu": buckets[0]["cpu"],
        "min": 0.0,
        "max": 9.0,
        "count": 40,
    }
    assert sum(b["count"] for b in buckets) == 600
    assert abs(buckets[1]["cpu"] - 4.5) < 1e-9


def test_csv_export_round_trips_every_sample(server_url: str) -> None:
    _, token = _account(server_url)
    batch = _batch(2_000)
    requests.post(f"{server_url}/cpu", json={"hash": token, "samples": batch}, timeout=30)
    answer = _read(server_url, token, format="csv", start_time=1_700_000_000.0)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["cpu", "time"]
    assert [(float(c), float(t)) for c, t in rows[1:]] == [(s["cpu"], s["time"]) for s in batch]
