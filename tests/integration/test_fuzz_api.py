"""Fuzzing the served API from its own OpenAPI document (Schemathesis), in every storage mode.

Every answer must be documented (status, content type, schema, headers) and none may be a 5xx. Random
session hashes name no session, so only 400/401 paths would be reached: positive cases carry the hashes,
credentials, access keys and key ids of real accounts most of the time, which reaches the 200 paths of
every call, and the 403s of sessions opened with keys (PROTOCOL.md part 4).
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case

pytestmark = pytest.mark.slow

SEED = 20_240_601
# Bounded for CI: a fixed seed, derandomized, no example database, so that every run fuzzes the same cases.
FUZZ_CONFIG = {
    "seed": SEED,
    "generation": {"mode": "all", "max-examples": 200, "deterministic": True, "database": "none"},
    "phases": {"stateful": {"enabled": False}},
    # Nothing here is secret, and a failure's curl line must replay it: show `session` values as sent.
    "output": {"sanitization": {"enabled": False}},
    "checks": {
        "enabled": False,
        "not_a_server_error": {"enabled": True},
        "status_code_conformance": {"enabled": True},
        "content_type_conformance": {"enabled": True},
        "response_schema_conformance": {"enabled": True},
        "response_headers_conformance": {"enabled": True},
        # How perfmon refuses invalid data; a 413 refuses an oversized body as surely as a 400 a malformed
        # one, and the login throttle's 429 (the fuzzer's many failed logins trip it) refuses any login.
        # 5xx are listed so that not_a_server_error alone reports them.
        "negative_data_rejection": {
            "enabled": True,
            "expected-statuses": ["400", "401", "404", "405", "413", "429", "5xx"],
        },
    },
}
UUID_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


@dataclass(frozen=True)
class Accounts:
    """Two users on the server under test: alice with two password sessions (the first holding samples,
    the second on host web-1 holding metrics), an ingest key with a session on web-1 that posted metrics
    too, and a read key with a session; bob, on host web-2."""

    user: str
    passwd: str
    hashes: tuple[str, ...]
    hosts: tuple[str, ...]
    keys: tuple[str, ...]
    key_ids: tuple[str, ...]


def _open_session(url: str, call: str, user: str, passwd: str, host: str | None = None) -> str:
    body = {"user": user, "passwd": passwd, "host": host}
    answer = requests.post(f"{url}/{call}", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["hash"]


@pytest.fixture
def accounts(server_url: str) -> Accounts:
    alice = _open_session(server_url, "register", "alice", "alice's secret")
    samples = [{"cpu": float(i % 7) * 12.5, "time": 1_700_000_000.0 + i * 0.75} for i in range(40)]
    samples += [{"cpu": 0, "time": 0}, {"cpu": 100.0, "time": 99_999_999_999.5}]
    stored = requests.post(f"{server_url}/cpu", json={"hash": alice, "samples": samples}, timeout=10)
    assert stored.status_code == 200, stored.text
    alice_again = _open_session(server_url, "login", "alice", "alice's secret", "web-1")
    metrics = [
        {"time": 1_700_000_000.0 + i, "metrics": {"cpu": 1.0 * i, "mem": 40.0, "temp": -2.5}}
        for i in range(20)
    ]
    stored = requests.post(
        f"{server_url}/samples", json={"hash": alice_again, "samples": metrics}, timeout=10
    )
    assert stored.status_code == 200, stored.text
    ingest, read = _make_key(server_url, alice, "ingest"), _make_key(server_url, alice, "read")
    agent = _key_session(server_url, ingest["key"], "web-1")
    stored = requests.post(f"{server_url}/samples", json={"hash": agent, "samples": metrics}, timeout=10)
    assert stored.status_code == 200, stored.text
    display = _key_session(server_url, read["key"])
    bob = _open_session(server_url, "register", "bob", "bob's secret", "web-2")
    return Accounts(
        "alice",
        "alice's secret",
        (alice, alice_again, agent, display, bob),
        ("web-1", "web-2"),
        (ingest["key"], read["key"]),
        (ingest["id"], read["id"]),
    )


def _make_key(url: str, token: str, scope: str) -> dict[str, Any]:
    answer = requests.post(f"{url}/keys", json={"hash": token, "scope": scope, "name": scope}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _key_session(url: str, key: str, host: str | None = None) -> str:
    answer = requests.post(f"{url}/login", json={"key": key, "host": host}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["hash"]


def _is_session_hash(value: object) -> bool:
    return isinstance(value, str) and UUID_TEXT.match(value) is not None


def _use_live_sessions(case: Case, accounts: Accounts) -> None:
    """Put real hashes or credentials into most positive cases; negative ones stay exactly as invalid.

    The choice is a function of the generated case (no extra draws), so derandomized runs stay repeatable
    and the coverage phase, which takes no extra strategies, still runs.
    """
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if case.operation.path == "/login" and isinstance(case.body, dict) and "key" in case.body:
        case.body = _with_live_value(case.body, "key", accounts.keys)
    elif case.operation.path in ("/register", "/login"):
        if isinstance(case.body, dict) and _pick(case.body, 2):
            case.body = {**case.body, "user": accounts.user, "passwd": accounts.passwd}
    elif case.operation.method.upper() == "POST":
        case.body = _with_live_hashes(case.body, ("hash",), accounts)
    else:
        case.query = _with_live_hosts(
            _with_live_hashes(case.query, ("hash", "user_hash", "session"), accounts), accounts
        )
        if isinstance(case.path_parameters, dict) and "key_id" in case.path_parameters:
            case.path_parameters = _with_live_value(case.path_parameters, "key_id", accounts.key_ids)


def _pick(fields: dict[str, Any], choices: int, salt: str = "") -> int:
    """A choice in range(choices) that depends only on the fields' values."""
    return zlib.crc32((salt + json.dumps(fields, sort_keys=True, default=repr)).encode()) % choices


def _with_live_hashes(fields: Any, names: tuple[str, ...], accounts: Accounts) -> Any:
    """The fields with each generated session hash kept or swapped for a live one, hash by hash."""
    if not isinstance(fields, dict):
        return fields
    swapped = {}
    for name in names:
        if _is_session_hash(fields.get(name)):
            choices = (fields[name], *accounts.hashes)
            swapped[name] = choices[_pick(fields, len(choices), salt=name)]
    return {**fields, **swapped}


def _with_live_hosts(fields: Any, accounts: Accounts) -> Any:
    """The fields with a generated `host` kept or swapped for a host of the accounts, so that host reads
    reach their 200 as often as their 404."""
    if not isinstance(fields, dict) or not isinstance(fields.get("host"), str):
        return fields
    return _with_live_value(fields, "host", accounts.hosts)


def _with_live_value(fields: dict[str, Any], name: str, live: tuple[str, ...]) -> dict[str, Any]:
    """The fields with the generated value of `name` kept or swapped for one of the live ones: an access
    key at login, a key id to revoke, a host to read."""
    choices = (fields[name], *live)
    return {**fields, name: choices[_pick(fields, len(choices), salt=name)]}


def _packaged_document() -> dict[str, Any]:
    return json.loads(resources.files("perfmon.entrypoints.http").joinpath("openapi.json").read_text())


schema = schemathesis.openapi.from_dict(
    _packaged_document(), config=schemathesis.Config.from_dict(FUZZ_CONFIG)
)


@schema.parametrize()
# One server per call and storage mode, shared by that call's examples: that is the point, not a slip.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_answer_is_documented_and_none_is_a_server_error(
    case: Case, server_url: str, accounts: Accounts
) -> None:
    _use_live_sessions(case, accounts)
    case.call_and_validate(base_url=server_url)
