"""GET /sessions to a read key's session names sessions by public ids, never by their hashes: a wall
display's read key must not learn a password session's hash, which may post and manage keys (PROTOCOL.md
part 4). The ids read the sessions (`session=`) and open nothing. Both storage modes, real HTTP."""

from __future__ import annotations

import re

import requests

from tests.integration.test_http_access import TIMEOUT, key_session, make_key

PUBLIC_ID = re.compile(r"s-[0-9a-f]{32}")


def test_a_read_session_sees_public_ids_that_read_sessions_and_open_nothing(server_url: str) -> None:
    registered = requests.post(
        f"{server_url}/register", json={"user": "alice", "passwd": "pw", "host": "web-1"}, timeout=TIMEOUT
    )
    password_token = registered.json()["hash"]
    posted = requests.post(
        f"{server_url}/cpu", json={"hash": password_token, "cpu": 12.5, "time": 100.0}, timeout=TIMEOUT
    )
    assert posted.status_code == 200
    reader = key_session(server_url, make_key(server_url, password_token, "read", "wall")["key"])

    listed = requests.get(f"{server_url}/sessions", params={"hash": reader}, timeout=TIMEOUT).json()[
        "payload"
    ]
    names = [entry["session"] for entry in listed]
    assert len(names) == 2 and all(PUBLIC_ID.fullmatch(name) for name in names)
    assert (
        password_token
        not in requests.get(f"{server_url}/sessions", params={"hash": reader}, timeout=TIMEOUT).text
    )
    with_samples = next(entry["session"] for entry in listed if entry["samples"] == 1)

    read = requests.get(
        f"{server_url}/cpu", params={"hash": reader, "session": with_samples}, timeout=TIMEOUT
    )
    assert read.json() == {"payload": [{"cpu": 12.5, "timestamp": 100.0}]}
    by_metric = requests.get(
        f"{server_url}/samples",
        params={"hash": reader, "session": with_samples, "metric": "cpu"},
        timeout=TIMEOUT,
    )
    assert by_metric.json() == {"payload": {"cpu": [{"timestamp": 100.0, "value": 12.5}]}}
    # An id is no hash: posting or making a key with it is a malformed hash.
    for refused in (
        requests.post(
            f"{server_url}/cpu", json={"hash": with_samples, "cpu": 1, "time": 101.0}, timeout=TIMEOUT
        ),
        requests.post(
            f"{server_url}/keys", json={"hash": with_samples, "scope": "ingest", "name": "x"}, timeout=TIMEOUT
        ),
    ):
        assert refused.status_code == 400


def test_a_password_session_is_still_told_hashes_as_in_part_2(server_url: str) -> None:
    registered = requests.post(
        f"{server_url}/register", json={"user": "bob", "passwd": "pw"}, timeout=TIMEOUT
    )
    token = registered.json()["hash"]
    listed = requests.get(f"{server_url}/sessions", params={"hash": token}, timeout=TIMEOUT).json()["payload"]
    assert [entry["session"] for entry in listed] == [token]


def test_another_users_public_id_is_no_such_session(server_url: str) -> None:
    alice = requests.post(f"{server_url}/register", json={"user": "alice", "passwd": "pw"}, timeout=TIMEOUT)
    bob = requests.post(f"{server_url}/register", json={"user": "bob", "passwd": "pw"}, timeout=TIMEOUT)
    reader = key_session(server_url, make_key(server_url, alice.json()["hash"], "read", "wall")["key"])
    bobs_id = next(
        entry["session"]
        for entry in requests.get(
            f"{server_url}/sessions",
            params={
                "hash": key_session(server_url, make_key(server_url, bob.json()["hash"], "read", "w")["key"])
            },
            timeout=TIMEOUT,
        ).json()["payload"]
        if entry["samples"] == 0 and entry["host"] is None
    )
    read = requests.get(f"{server_url}/cpu", params={"hash": reader, "session": bobs_id}, timeout=TIMEOUT)
    assert (read.status_code, read.json()) == (404, {"reason": "No such session"})
