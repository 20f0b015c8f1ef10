"""What a damaged data dir does to access (PROTOCOL.md part 4), over real HTTP to a file-mode server.

A key record (`keys/<id>.json`) or a session record (`sessions/<token>.json`) can be damaged: an empty
file after a power cut with `--fsync never` (the default: a link() is no rename, and its data may not
reach the disk before the link does), or a hand edit. Whatever the damage, every call that meets the
record answers a clear `503 Storage unavailable` (the storage is at fault, PROTOCOL.md limits), never a
500, never a 400 blaming the client, and never a 200 that a damaged record grants: a key record edited to
scope "all" must open no session that may manage keys. A record that reads whole again is served again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from perfmon.config import Settings
from tests.integration.api_calls import open_account
from tests.servers import threaded_server

TIMEOUT = 10
STORAGE_UNAVAILABLE = (503, {"reason": "Storage unavailable, retry later"})

Damage = Callable[[bytes], bytes]


def _edited(**fields: Any) -> Damage:
    def edit(content: bytes) -> bytes:
        record = json.loads(content)
        for name, value in fields.items():
            if value is _MISSING:
                del record[name]
            else:
                record[name] = value
        return json.dumps(record).encode()

    return edit


_MISSING = object()

# What a key record can become: torn, not an object, a field gone or of the wrong kind, or a scope that
# no key may have (PROTOCOL.md part 4: ingest or read), which the database's check constraint refuses.
KEY_RECORD_DAMAGES: dict[str, Damage] = {
    "empty": lambda content: b"",
    "torn": lambda content: content[: len(content) // 2],
    "not utf-8": lambda content: b"\xff\xfe" + content,
    "a list": lambda content: b"[]",
    "null": lambda content: b"null",
    "an empty object": lambda content: b"{}",
    "no revoked_at": _edited(revoked_at=_MISSING),
    "no scope": _edited(scope=_MISSING),
    "scope all": _edited(scope="all"),
    "scope unknown": _edited(scope="admin"),
    "scope a number": _edited(scope=1),
    "user a number": _edited(user=5),
    "user with a control character": _edited(user="alice\u0000"),
    "created a string": _edited(created_at="yesterday"),
    "name a number": _edited(name=7),
    "digest a number": _edited(digest=12),
    "revoked_at a string": _edited(revoked_at="yes"),
}

SESSION_RECORD_DAMAGES: dict[str, Damage] = {
    "empty": lambda content: b"",
    "torn": lambda content: content[: len(content) // 2],
    "a list": lambda content: b"[]",
    "scope unknown": _edited(scope="admin"),
    "scope null": _edited(scope=None),
    "user with a control character": _edited(user="alice\u0000"),
    "user missing": _edited(user=_MISSING),
    "created a string": _edited(created_at="yesterday"),
    "host a number": _edited(host=5),
    "key a number": _edited(key=5),
}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def url(data_dir: Path) -> Iterator[str]:
    with threaded_server(Settings(storage="file", data_dir=data_dir, threads=4)) as base:
        yield base


def _call(method: str, url: str, path: str, **options: Any) -> tuple[int, Any]:
    answer = requests.request(method, f"{url}{path}", timeout=TIMEOUT, **options)
    return answer.status_code, answer.json()


def _damage(path: Path, damage: Damage) -> None:
    path.write_bytes(damage(path.read_bytes()))


def _drop_caches(url: str) -> None:
    """Close an unrelated session: as any logout does, it makes the server read every session anew."""
    _, token = open_account(url)
    assert _call("POST", url, "/logout", json={"hash": token})[0] == 200


def _everything_a_key_meets(url: str, password: str, key: dict[str, Any], key_session: str) -> dict[str, Any]:
    """Each call that reads the key's record, by what it does, with its answer."""
    return {
        "login with the key": _call("POST", url, "/login", json={"key": key["key"]}),
        "list the keys": _call("GET", url, "/keys", params={"hash": password}),
        "revoke the key": _call("DELETE", url, f"/keys/{key['id']}", params={"hash": password}),
        "the key's session reads": _call("GET", url, "/cpu", params={"hash": key_session}),
        "the key's session lists keys": _call("GET", url, "/keys", params={"hash": key_session}),
        "the key's session makes a key": _call(
            "POST", url, "/keys", json={"hash": key_session, "scope": "read", "name": "more"}
        ),
        "the password session lists sessions": _call("GET", url, "/sessions", params={"hash": password}),
        "the password session lists hosts": _call("GET", url, "/hosts", params={"hash": password}),
    }


@pytest.mark.parametrize("damage", KEY_RECORD_DAMAGES.values(), ids=KEY_RECORD_DAMAGES.keys())
def test_a_damaged_key_record_is_a_503_wherever_it_is_read_and_grants_nothing(
    url: str, data_dir: Path, damage: Damage
) -> None:
    _, password = open_account(url)
    made = requests.post(
        f"{url}/keys", json={"hash": password, "scope": "read", "name": "wall"}, timeout=TIMEOUT
    )
    key = made.json()
    opened = requests.post(f"{url}/login", json={"key": key["key"]}, timeout=TIMEOUT)
    key_session = opened.json()["hash"]
    record = data_dir / "keys" / f"{key['id']}.json"
    whole = record.read_bytes()

    _damage(record, damage)
    _drop_caches(url)

    answers = _everything_a_key_meets(url, password, key, key_session)
    assert {call: answer for call, answer in answers.items() if answer != STORAGE_UNAVAILABLE} == {}
    # Nothing was changed by the refused calls: once repaired, the key and its session are as they were.
    record.write_bytes(whole)
    _drop_caches(url)
    assert _call("GET", url, "/cpu", params={"hash": key_session}) == (200, {"payload": []})
    listed = _call("GET", url, "/keys", params={"hash": password})[1]["payload"]
    assert [entry["id"] for entry in listed] == [key["id"]]


@pytest.mark.parametrize("damage", SESSION_RECORD_DAMAGES.values(), ids=SESSION_RECORD_DAMAGES.keys())
def test_a_damaged_session_record_is_a_503_for_it_and_for_its_users_lists(
    url: str, data_dir: Path, damage: Damage
) -> None:
    _, password = open_account(url)
    key = requests.post(
        f"{url}/keys", json={"hash": password, "scope": "ingest", "name": "web-1"}, timeout=TIMEOUT
    ).json()
    opened = requests.post(f"{url}/login", json={"key": key["key"], "host": "web-1"}, timeout=TIMEOUT)
    key_session = opened.json()["hash"]
    record = data_dir / "sessions" / f"{key_session}.json"
    whole = record.read_bytes()

    _damage(record, damage)
    _drop_caches(url)

    answers = {
        "it posts": _call("POST", url, "/cpu", json={"hash": key_session, "cpu": 1.0, "time": 5.0}),
        "it logs out": _call("POST", url, "/logout", json={"hash": key_session}),
        "its user's sessions": _call("GET", url, "/sessions", params={"hash": password}),
        "its user's hosts": _call("GET", url, "/hosts", params={"hash": password}),
    }
    assert {call: answer for call, answer in answers.items() if answer != STORAGE_UNAVAILABLE} == {}
    record.write_bytes(whole)
    _drop_caches(url)
    assert _call("POST", url, "/cpu", json={"hash": key_session, "cpu": 1.0, "time": 5.0})[0] == 200


USER_RECORD_DAMAGES: dict[str, Damage] = {
    "empty": lambda content: b"",
    "torn": lambda content: content[: len(content) // 2],
    "not utf-8": lambda content: b"\xff\xfe" + content,
    "a list": lambda content: b"[]",
    "no password hash": _edited(password_hash=_MISSING),
    "password hash a number": _edited(password_hash=5),
    "another name": _edited(name="mallory"),
}


@pytest.mark.parametrize("damage", USER_RECORD_DAMAGES.values(), ids=USER_RECORD_DAMAGES.keys())
def test_a_damaged_user_record_is_a_503_at_login_and_served_again_once_whole(
    url: str, data_dir: Path, damage: Damage
) -> None:
    assert _call("POST", url, "/register", json={"user": "carol", "passwd": "pw"})[0] == 200
    [record] = (data_dir / "users").glob("carol~*.json")
    whole = record.read_bytes()

    _damage(record, damage)
    assert _call("POST", url, "/login", json={"user": "carol", "passwd": "pw"}) == STORAGE_UNAVAILABLE
    record.write_bytes(whole)
    assert _call("POST", url, "/login", json={"user": "carol", "passwd": "pw"})[0] == 200
