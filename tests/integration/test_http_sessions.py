"""A user's sessions, `GET /sessions` and `GET /cpu?session=` (PROTOCOL.md part 2), over real HTTP to a
waitress server, in both storage modes."""

from __future__ import annotations

import requests

from tests.integration.api_calls import UNKNOWN, open_account, read_cpu, sample_batch


def test_sessions_and_reading_another_session_of_the_same_user(server_url: str) -> None:
    name, first = open_account(server_url)
    requests.post(f"{server_url}/cpu", json={"hash": first, "samples": sample_batch(3, 100.0)}, timeout=10)
    second = requests.post(f"{server_url}/login", json={"user": name, "passwd": "pw"}, timeout=10).json()[
        "hash"
    ]
    listed = requests.get(f"{server_url}/sessions", params={"hash": second}, timeout=10).json()["payload"]
    assert [(s["session"], s["samples"], s["first"], s["last"]) for s in listed] == [
        (second, 0, None, None),
        (first, 3, 100.0, 102.0),
    ]
    assert listed[0]["created"] >= listed[1]["created"]
    assert len(read_cpu(server_url, second, session=first).json()["payload"]) == 3


def test_another_users_session_is_404_indistinguishable_from_none(server_url: str) -> None:
    _, alices = open_account(server_url)
    requests.post(f"{server_url}/cpu", json={"hash": alices, "cpu": 1.0, "time": 1.0}, timeout=10)
    _, bobs = open_account(server_url)
    answers = [read_cpu(server_url, bobs, session=session) for session in (alices, UNKNOWN)]
    assert [(a.status_code, a.json()) for a in answers] == [(404, {"reason": "No such session"})] * 2
    assert requests.get(f"{server_url}/sessions", params={"hash": UNKNOWN}, timeout=10).status_code == 401
