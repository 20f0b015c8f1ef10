"""Every row of PROTOCOL.md part 4 (access) over real HTTP to a waitress server, in both storage modes:
POST /logout, POST /keys, GET /keys, DELETE /keys/{id}, POST /login with a key, what each scope may do,
and closing a session or revoking a key seen by a second server process on the same storage within a
second, after that process had served (and so cached) the sessions."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.integration.api_calls import UNKNOWN, open_account
from tests.servers import ServerProcess, start_server_process

TIMEOUT = 10
FORBIDDEN = (403, {"reason": "Forbidden"})
NO_SUCH_KEY = (404, {"reason": "No such key"})
WRONG_CREDENTIALS = (401, {"reason": "Wrong credentials or user is not registered"})
POST_401 = (401, {"reason": "Not authorized user try to post data, please login"})
GET_401 = (401, {"reason": "Not authorized user try to get data, please login"})
# PROTOCOL.md part 4: a closed session is refused in every process within a second.
CLOSED_EVERYWHERE_WITHIN = 1.0


def answer(response: requests.Response) -> tuple[int, Any]:
    return response.status_code, response.json()


def is_bad_arguments(response: requests.Response, field: str) -> bool:
    body = response.json()
    return response.status_code == 400 and body["reason"] == "Bad arguments" and field in body["detail"]


def make_key(url: str, token: str, scope: str = "ingest", name: str = "agent") -> dict[str, Any]:
    made = requests.post(f"{url}/keys", json={"hash": token, "scope": scope, "name": name}, timeout=TIMEOUT)
    assert made.status_code == 200, made.text
    return made.json()


def key_login(url: str, key: Any, **extra: Any) -> requests.Response:
    return requests.post(f"{url}/login", json={"key": key, **extra}, timeout=TIMEOUT)


def key_session(url: str, key: str, host: str | None = None) -> str:
    opened = key_login(url, key, host=host)
    assert opened.status_code == 200, opened.text
    return opened.json()["hash"]


def keys_of(url: str, token: str) -> requests.Response:
    return requests.get(f"{url}/keys", params={"hash": token}, timeout=TIMEOUT)


def revoke(url: str, token: str, key_id: str) -> requests.Response:
    return requests.delete(f"{url}/keys/{key_id}", params={"hash": token}, timeout=TIMEOUT)


def logout(url: str, token: Any) -> requests.Response:
    return requests.post(f"{url}/logout", json={"hash": token}, timeout=TIMEOUT)


def post_cpu(url: str, token: str, moment: float = 1_700_000_000.0) -> requests.Response:
    return requests.post(f"{url}/cpu", json={"hash": token, "cpu": 5.0, "time": moment}, timeout=TIMEOUT)


def post_batch(url: str, token: str) -> requests.Response:
    body = {"hash": token, "samples": [{"cpu": 1.0, "time": 1_700_000_001.0}]}
    return requests.post(f"{url}/cpu", json=body, timeout=TIMEOUT)


def post_metrics(url: str, token: str) -> requests.Response:
    body = {"hash": token, "time": 1_700_000_002.0, "metrics": {"cpu": 3.0, "mem": 4.0}}
    return requests.post(f"{url}/samples", json=body, timeout=TIMEOUT)


def reads(url: str, token: str) -> dict[str, requests.Response]:
    """Every read of the protocol with this hash, by its path."""
    return {
        path: requests.get(f"{url}{path}", params={"hash": token, **params}, timeout=TIMEOUT)
        for path, params in (("/cpu", {}), ("/samples", {"metric": "cpu"}), ("/sessions", {}), ("/hosts", {}))
    }


def register_on(url: str, host: str) -> tuple[str, str]:
    """A fresh user with a first session on the host: its name and that session's hash."""
    name, _ = open_account(url)
    opened = requests.post(f"{url}/login", json={"user": name, "passwd": "pw", "host": host}, timeout=TIMEOUT)
    assert opened.status_code == 200, opened.text
    return name, opened.json()["hash"]


def log_in(url: str, name: str) -> str:
    opened = requests.post(f"{url}/login", json={"user": name, "passwd": "pw"}, timeout=TIMEOUT)
    assert opened.status_code == 200, opened.text
    return opened.json()["hash"]


# --- POST /logout -------------------------------------------------------------------------------------


def test_after_logout_the_hash_is_401_on_every_call_and_its_samples_read_through_another_session(
    server_url: str,
) -> None:
    name, token = register_on(server_url, "web-1")
    assert post_cpu(server_url, token, 1_700_000_000.0).status_code == 200
    assert answer(logout(server_url, token)) == (200, {})
    for path, response in reads(server_url, token).items():
        assert answer(response) == GET_401, path
    assert answer(keys_of(server_url, token)) == GET_401
    for response in (
        post_cpu(server_url, token),
        post_batch(server_url, token),
        post_metrics(server_url, token),
    ):
        assert answer(response) == POST_401
    made = requests.post(f"{server_url}/keys", json={"hash": token, "scope": "read", "name": "n"}, timeout=10)
    assert answer(made) == POST_401
    assert answer(revoke(server_url, token, "0123456789abcdef")) == POST_401
    assert answer(logout(server_url, token)) == POST_401

    other = log_in(server_url, name)
    by_session = requests.get(f"{server_url}/cpu", params={"hash": other, "session": token}, timeout=10)
    assert by_session.json() == {"payload": [{"cpu": 5.0, "timestamp": 1_700_000_000.0}]}
    by_host = requests.get(
        f"{server_url}/samples", params={"hash": other, "host": "web-1", "metric": "cpu"}, timeout=10
    )
    assert by_host.json() == {"payload": {"cpu": [{"timestamp": 1_700_000_000.0, "value": 5.0}]}}


def test_logout_of_a_malformed_body_is_400_and_of_an_unknown_hash_401(server_url: str) -> None:
    for body in ({}, {"hash": 7}, {"hash": "not-a-uuid"}):
        assert is_bad_arguments(requests.post(f"{server_url}/logout", json=body, timeout=10), "hash")
    assert is_bad_arguments(requests.post(f"{server_url}/logout", json=["hash"], timeout=10), "object")
    assert answer(logout(server_url, UNKNOWN)) == POST_401


# --- POST /keys, GET /keys ----------------------------------------------------------------------------


def test_keys_are_made_shown_once_and_listed_oldest_first_without_the_key(server_url: str) -> None:
    _, token = open_account(server_url)
    before = time.time()
    made = [
        make_key(server_url, token, scope, name) for scope, name in [("ingest", "web-1"), ("read", "wall")]
    ]
    for entry, (scope, name) in zip(made, [("ingest", "web-1"), ("read", "wall")], strict=True):
        assert set(entry) == {"id", "key", "scope", "name", "created"}
        assert (entry["scope"], entry["name"]) == (scope, name)
        assert entry["key"].startswith("pmk_") and len(entry["key"]) == 47
        assert before - 1 <= entry["created"] <= time.time() + 1
    listed = keys_of(server_url, token)
    assert listed.json() == {
        "payload": [
            {key: entry[key] for key in ("id", "scope", "name", "created")} | {"last_used": None}
            for entry in made
        ]
    }
    assert all(entry["key"] not in listed.text for entry in made)


def test_each_user_lists_only_their_keys(server_url: str) -> None:
    (_, alice), (_, bob) = open_account(server_url), open_account(server_url)
    mine, theirs = make_key(server_url, alice), make_key(server_url, bob)
    assert [entry["id"] for entry in keys_of(server_url, alice).json()["payload"]] == [mine["id"]]
    assert [entry["id"] for entry in keys_of(server_url, bob).json()["payload"]] == [theirs["id"]]


def test_make_key_refuses_a_bad_scope_name_or_hash_with_400_before_401(server_url: str) -> None:
    _, token = open_account(server_url)
    for who in (token, UNKNOWN):
        for body, field in (
            ({"scope": "all", "name": "n"}, "scope"),
            ({"name": "n"}, "scope"),
            ({"scope": "read", "name": ""}, "name"),
            ({"scope": "read", "name": "x" * 129}, "name"),
            ({"scope": "read", "name": "a\nb"}, "name"),
            ({"scope": "read"}, "name"),
        ):
            made = requests.post(f"{server_url}/keys", json={"hash": who, **body}, timeout=10)
            assert is_bad_arguments(made, field), made.text
    made = requests.post(f"{server_url}/keys", json={"scope": "read", "name": "n"}, timeout=10)
    assert is_bad_arguments(made, "hash")
    assert keys_of(server_url, token).json() == {"payload": []}
    made = requests.post(
        f"{server_url}/keys", json={"hash": UNKNOWN, "scope": "read", "name": "n"}, timeout=10
    )
    assert answer(made) == POST_401
    assert is_bad_arguments(requests.get(f"{server_url}/keys", timeout=10), "hash")
    assert answer(keys_of(server_url, UNKNOWN)) == GET_401


def test_last_used_is_null_until_the_first_login_with_the_key_then_set(server_url: str) -> None:
    _, token = open_account(server_url)
    made = make_key(server_url, token)
    assert keys_of(server_url, token).json()["payload"][0]["last_used"] is None
    before = time.time()
    key_session(server_url, made["key"])
    last_used = keys_of(server_url, token).json()["payload"][0]["last_used"]
    assert last_used is not None and before - 1 <= last_used <= time.time() + 1


# --- DELETE /keys/{id} --------------------------------------------------------------------------------


def test_a_revoked_key_opens_no_session_closes_its_sessions_and_leaves_the_list(server_url: str) -> None:
    _, owner = open_account(server_url)
    kept, revoked = make_key(server_url, owner, "read", "kept"), make_key(server_url, owner, "ingest", "gone")
    sessions = [key_session(server_url, revoked["key"]), key_session(server_url, revoked["key"], "web-1")]
    still = key_session(server_url, kept["key"])
    for token in sessions:
        assert post_cpu(server_url, token).status_code == 200
    assert answer(revoke(server_url, owner, revoked["id"])) == (200, {})
    assert answer(key_login(server_url, revoked["key"])) == WRONG_CREDENTIALS
    for token in sessions:
        assert answer(post_cpu(server_url, token)) == POST_401
        assert answer(post_metrics(server_url, token)) == POST_401
        assert answer(logout(server_url, token)) == POST_401
    assert [entry["id"] for entry in keys_of(server_url, owner).json()["payload"]] == [kept["id"]]
    assert reads(server_url, still)["/cpu"].status_code == 200
    assert post_cpu(server_url, owner).status_code == 200
    assert answer(revoke(server_url, owner, revoked["id"])) == NO_SUCH_KEY


def test_another_users_key_id_is_404_like_an_unknown_one(server_url: str) -> None:
    (_, alice), (_, bob) = open_account(server_url), open_account(server_url)
    theirs = make_key(server_url, bob)
    assert answer(revoke(server_url, alice, theirs["id"])) == NO_SUCH_KEY
    assert answer(revoke(server_url, alice, "0123456789abcdef")) == NO_SUCH_KEY
    assert answer(revoke(server_url, alice, "not-an-id")) == NO_SUCH_KEY
    assert key_login(server_url, theirs["key"]).status_code == 200


def test_revoke_without_a_hash_is_400_and_with_an_unknown_one_401(server_url: str) -> None:
    made = requests.delete(f"{server_url}/keys/0123456789abcdef", timeout=10)
    assert is_bad_arguments(made, "hash")
    assert answer(revoke(server_url, UNKNOWN, "0123456789abcdef")) == POST_401


# --- POST /login with a key, and scopes ---------------------------------------------------------------


def test_a_key_login_opens_a_new_session_on_the_host_named(server_url: str) -> None:
    _, owner = open_account(server_url)
    key = make_key(server_url, owner)["key"]
    first, second = key_session(server_url, key), key_session(server_url, key, "web-1")
    assert first != second
    listed = reads(server_url, owner)["/sessions"].json()["payload"]
    assert [(entry["session"], entry["host"]) for entry in listed][:2] == [(second, "web-1"), (first, None)]


def test_a_key_login_refuses_what_is_no_live_key_or_not_alone(server_url: str) -> None:
    name, owner = open_account(server_url)
    key = make_key(server_url, owner)["key"]
    for text in ("pmk_" + "Z" * 43, "pmk_short", "", key + "x"):
        assert answer(key_login(server_url, text)) == WRONG_CREDENTIALS
    for not_text in (None, 7, [key], {"key": key}):
        assert is_bad_arguments(key_login(server_url, not_text), "key")
    for extra in ({"user": name}, {"passwd": "pw"}, {"user": name, "passwd": "pw"}):
        assert is_bad_arguments(key_login(server_url, key, **extra), "key")
    assert is_bad_arguments(key_login(server_url, key, host=""), "host")


def test_an_ingest_session_posts_and_logs_out_but_reads_nothing(server_url: str) -> None:
    _, owner = open_account(server_url)
    token = key_session(server_url, make_key(server_url, owner, "ingest")["key"], "web-1")
    assert post_cpu(server_url, token).status_code == 200
    assert answer(post_batch(server_url, token)) == (200, {"stored": 1})
    assert answer(post_metrics(server_url, token)) == (200, {"stored": 1})
    for path, response in reads(server_url, token).items():
        assert answer(response) == FORBIDDEN, path
    assert answer(keys_of(server_url, token)) == FORBIDDEN
    host_read = requests.get(
        f"{server_url}/samples", params={"hash": token, "host": "web-1", "metric": "cpu"}, timeout=10
    )
    assert answer(host_read) == FORBIDDEN
    assert answer(logout(server_url, token)) == (200, {})
    # What it posted is its user's: the password session reads it.
    assert reads(server_url, owner)["/hosts"].json()["payload"][0]["latest"] == {"cpu": 3.0, "mem": 4.0}


def test_a_read_session_reads_everything_but_posts_nothing(server_url: str) -> None:
    _, owner = register_on(server_url, "web-1")
    assert post_cpu(server_url, owner).status_code == 200
    token = key_session(server_url, make_key(server_url, owner, "read")["key"])
    for path, response in reads(server_url, token).items():
        assert response.status_code == 200, path
    by_host = requests.get(
        f"{server_url}/samples", params={"hash": token, "host": "web-1", "metric": "cpu"}, timeout=10
    )
    assert by_host.json() == {"payload": {"cpu": [{"timestamp": 1_700_000_000.0, "value": 5.0}]}}
    for response in (
        post_cpu(server_url, token),
        post_batch(server_url, token),
        post_metrics(server_url, token),
    ):
        assert answer(response) == FORBIDDEN
    assert answer(logout(server_url, token)) == (200, {})


@pytest.mark.parametrize("scope", ["ingest", "read"])
def test_a_key_session_cannot_make_list_or_revoke_keys(server_url: str, scope: str) -> None:
    _, owner = open_account(server_url)
    made = make_key(server_url, owner, scope)
    token = key_session(server_url, made["key"])
    attempt = requests.post(
        f"{server_url}/keys", json={"hash": token, "scope": "read", "name": "n"}, timeout=10
    )
    assert answer(attempt) == FORBIDDEN
    assert answer(keys_of(server_url, token)) == FORBIDDEN
    assert answer(revoke(server_url, token, made["id"])) == FORBIDDEN
    assert key_login(server_url, made["key"]).status_code == 200


# --- a second server process on the same storage ------------------------------------------------------


@pytest.fixture
def second_server(server_flags: list[str]) -> Iterator[ServerProcess]:
    """Another `perfmon serve` process on the storage of server_url."""
    process = start_server_process(*server_flags)
    try:
        yield process
    finally:
        assert process.stop() == 0


def refused_within_a_second(call: Callable[[], requests.Response], refusal: tuple[int, Any]) -> None:
    """The call answers the refusal within CLOSED_EVERYWHERE_WITHIN seconds from now, and from then on."""
    deadline = time.monotonic() + CLOSED_EVERYWHERE_WITHIN
    while answer(call()) != refusal:
        assert time.monotonic() < deadline, f"still not {refusal[0]} after {CLOSED_EVERYWHERE_WITHIN} s"
        time.sleep(0.02)
    assert [answer(call()) for _ in range(3)] == [refusal] * 3


def test_a_revoked_keys_and_a_logged_out_sessions_hashes_are_refused_by_another_process_within_a_second(
    server_url: str, second_server: ServerProcess
) -> None:
    other = second_server.url
    name, owner = open_account(server_url)
    ingest, read = make_key(server_url, owner, "ingest"), make_key(server_url, owner, "read")
    # Sessions opened on either process; the other process serves each (and so caches it) first.
    agent = key_session(server_url, ingest["key"], "web-1")
    agent_there = key_session(other, ingest["key"], "web-2")
    display = key_session(other, read["key"])
    leaving = log_in(other, name)
    for url, token in ((other, agent), (server_url, agent_there), (other, agent_there)):
        assert post_cpu(url, token).status_code == 200
    assert reads(server_url, display)["/hosts"].status_code == 200
    assert reads(other, display)["/hosts"].status_code == 200
    assert reads(other, leaving)["/sessions"].status_code == 200

    assert revoke(server_url, owner, ingest["id"]).status_code == 200
    refused_within_a_second(lambda: post_cpu(other, agent), POST_401)
    refused_within_a_second(lambda: post_cpu(other, agent_there), POST_401)
    assert answer(key_login(other, ingest["key"])) == WRONG_CREDENTIALS

    # The other way: revoked through the second process, refused by the first.
    assert revoke(other, owner, read["id"]).status_code == 200
    refused_within_a_second(lambda: reads(server_url, display)["/hosts"], GET_401)
    assert answer(key_login(server_url, read["key"])) == WRONG_CREDENTIALS

    assert logout(server_url, leaving).status_code == 200
    refused_within_a_second(lambda: reads(other, leaving)["/sessions"], GET_401)
    # The user's other sessions are untouched, on both.
    for url in (server_url, other):
        assert post_cpu(url, owner).status_code == 200
    assert keys_of(other, owner).json() == {"payload": []}
