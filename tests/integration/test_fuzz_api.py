"""Fuzzing the served API from its own OpenAPI document (Schemathesis), in every storage mode.

Every answer must be documented (status, content type, schema, headers) and none may be a 5xx. Random
session hashes name no session, so only 400/401 paths would be reached: positive cases carry the hashes
and credentials of real accounts most of the time, which reaches the 200 paths of every call.
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
    """Two users on the server under test: alice with two sessions (the first holding samples), the
    second on host web-1 holding metrics; bob, on host web-2."""

    user: str
    passwd: str
    hashes: tuple[str, ...]
    hosts: tuple[str, ...]


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
    bob = _open_session(server_url, "register", "bob", "bob's secret", "web-2")
    return Accounts("alice", "alice's secret", (alice, alice_again, bob), ("web-1", "web-2"))


def _is_session_hash(value: object) -> bool:
    return isinstance(value, str) and UUID_TEXT.match(value) is not None


def _use_live_sessions(case: Case, accounts: Accounts) -> None:
    """Put real hashes or credentials into most positive cases; negative ones stay exactly as invalid.

    The choice is a function of the generated case (no extra draws), so derandomized runs stay repeatable
    and the coverage phase, which takes no extra strategies, still runs.
    """
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if case.operation.path in ("/register", "/login"):
        if isinstance(case.body, dict) and _pick(case.body, 2):
            case.body = {**case.body, "user": accounts.user, "passwd": accounts.passwd}
    elif case.operation.method.upper() == "POST":
        case.body = _with_live_hashes(case.body, ("hash",), accounts)
    else:
        case.query = _with_live_hosts(
            _with_live_hashes(case.query, ("hash", "user_hash", "session"), accounts), accounts
        )


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
    choices = (fields["host"], *accounts.hosts)
    return {**fields, "host": choices[_pick(fields, len(choices), salt="host")]}


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
