"""Part 1 of PROTOCOL.md through Falcon's test client over in-memory storage."""

from __future__ import annotations

import json

import pytest
from falcon.testing import TestClient

from perfmon.domain.access import Access
from perfmon.domain.accounts import Accounts
from perfmon.domain.history import History
from perfmon.domain.legacy_records import LegacySourceUnreadable
from perfmon.entrypoints.http.app import create_app

UNKNOWN = "3f1c1b7e-8a1d-4c55-9a7e-0d9f0b6f5a21"


def _is_bad_arguments(status: int, body: dict[str, str]) -> bool:
    """A protocol 400: the exact reason, and a detail saying which field broke which rule."""
    return status == 400 and body["reason"] == "Bad arguments" and bool(body.get("detail"))


def _register(client: TestClient, user: str = "alice", passwd: str = "pw") -> str:
    result = client.simulate_post("/register", json={"user": user, "passwd": passwd})
    assert result.status_code == 200, result.text
    return result.json["hash"]


def test_register_answers_a_uuid_hash(client: TestClient) -> None:
    token = _register(client)
    assert len(token) == 36 and token.count("-") == 4


def test_register_of_a_taken_name_is_400_already_registered(client: TestClient) -> None:
    _register(client)
    result = client.simulate_post("/register", json={"user": "alice", "passwd": "other"})
    assert result.status_code == 400 and result.json["reason"] == "User is already registered"
    assert result.json["detail"] == "user names a registered user"


@pytest.mark.parametrize("path", ["/register", "/login"])
@pytest.mark.parametrize(
    "body",
    [
        '{"user": "a"}',
        '{"passwd": "a"}',
        '{"user": 1, "passwd": "a"}',
        '{"user": "a", "passwd": null}',
        '["user", "passwd"]',
        '"text"',
        "{not json",
        "",
        '{"user": "", "passwd": "a"}',
        '{"user": "a\\u0000", "passwd": "a"}',
        json.dumps({"user": "u" * 129, "passwd": "a"}),
        json.dumps({"user": "a", "passwd": "p" * 1025}),
        '{"user": true, "passwd": "a"}',
    ],
)
def test_account_calls_refuse_bad_arguments(client: TestClient, path: str, body: str) -> None:
    result = client.simulate_post(path, body=body, content_type="application/json")
    assert _is_bad_arguments(result.status_code, result.json)


def test_login_opens_a_new_session_each_time(client: TestClient) -> None:
    first = _register(client)
    second = client.simulate_post("/login", json={"user": "alice", "passwd": "pw"}).json["hash"]
    third = client.simulate_post("/login", json={"user": "alice", "passwd": "pw"}).json["hash"]
    assert len({first, second, third}) == 3


@pytest.mark.parametrize(("user", "passwd"), [("alice", "wrong"), ("nobody", "pw")])
def test_login_failures_are_one_401(client: TestClient, user: str, passwd: str) -> None:
    _register(client)
    result = client.simulate_post("/login", json={"user": user, "passwd": passwd})
    assert (result.status_code, result.json) == (
        401,
        {"reason": "Wrong credentials or user is not registered"},
    )


def test_post_cpu_answers_the_sample_as_stored(client: TestClient) -> None:
    token = _register(client)
    result = client.simulate_post("/cpu", json={"hash": token, "cpu": 12.5, "time": 1_700_000_000.5})
    assert result.status_code == 200
    assert result.json == {"payload": {"cpu": 12.5, "hash": token, "time": 1_700_000_000.5}}


def test_values_round_trip_exactly(client: TestClient) -> None:
    token = _register(client)
    cpu, moment = 0.1 + 0.2, 1_649_596_019.8951234
    client.simulate_post("/cpu", body=json.dumps({"hash": token, "cpu": cpu, "time": moment}))
    payload = client.simulate_get("/cpu", params={"hash": token}).json["payload"]
    assert payload == [{"cpu": cpu, "timestamp": moment}]


@pytest.mark.parametrize(
    "sample",
    [
        {"cpu": "1", "time": 1},
        {"cpu": True, "time": 1},
        {"cpu": 1, "time": False},
        {"cpu": None, "time": 1},
        {"cpu": -1, "time": 1},
        {"cpu": 1, "time": -1},
        {"cpu": 1, "time": 1e11},
        {"cpu": 1},
        {"time": 1},
        {"cpu": [1], "time": 1},
        {"cpu": 10**400, "time": 1},
    ],
)
def test_post_cpu_refuses_bad_samples_and_stores_nothing(client: TestClient, sample: dict) -> None:
    token = _register(client)
    result = client.simulate_post("/cpu", body=json.dumps({"hash": token, **sample}))
    assert _is_bad_arguments(result.status_code, result.json)
    assert client.simulate_get("/cpu", params={"hash": token}).json == {"payload": []}


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_post_cpu_refuses_non_finite_numbers(client: TestClient, literal: str) -> None:
    token = _register(client)
    body = f'{{"hash": "{token}", "cpu": {literal}, "time": 1}}'
    result = client.simulate_post("/cpu", body=body)
    assert _is_bad_arguments(result.status_code, result.json)


@pytest.mark.parametrize("token", ["not-a-uuid", "", 42, None, "../../etc/passwd"])
def test_post_cpu_with_a_malformed_hash_is_400(client: TestClient, token: object) -> None:
    result = client.simulate_post("/cpu", json={"hash": token, "cpu": 1, "time": 1})
    assert _is_bad_arguments(result.status_code, result.json)


def test_post_cpu_to_an_unknown_session_is_401(client: TestClient) -> None:
    result = client.simulate_post("/cpu", json={"hash": UNKNOWN, "cpu": 1, "time": 1})
    assert (result.status_code, result.json) == (
        401,
        {"reason": "Not authorized user try to post data, please login"},
    )


def test_get_cpu_of_an_unknown_session_is_401(client: TestClient) -> None:
    result = client.simulate_get("/cpu", params={"hash": UNKNOWN})
    assert (result.status_code, result.json) == (
        401,
        {"reason": "Not authorized user try to get data, please login"},
    )


@pytest.mark.parametrize("name", ["hash", "user_hash"])
def test_get_cpu_accepts_hash_and_user_hash(client: TestClient, name: str) -> None:
    token = _register(client)
    client.simulate_post("/cpu", json={"hash": token, "cpu": 1.0, "time": 5.0})
    assert client.simulate_get("/cpu", params={name: token}).json == {
        "payload": [{"cpu": 1.0, "timestamp": 5.0}]
    }


def test_get_cpu_filters_by_start_and_cur_time(client: TestClient) -> None:
    token = _register(client)
    for moment in (10.0, 20.0, 30.0, 40.0):
        client.simulate_post("/cpu", json={"hash": token, "cpu": moment / 10, "time": moment})
    got = client.simulate_get("/cpu", params={"hash": token, "start_time": "20", "cur_time": "30"})
    assert got.json == {"payload": [{"cpu": 2.0, "timestamp": 20.0}, {"cpu": 3.0, "timestamp": 30.0}]}
    only_start = client.simulate_get("/cpu", params={"hash": token, "start_time": "35"}).json["payload"]
    assert [s["timestamp"] for s in only_start] == [40.0]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"hash": "nope"},
        {"hash": UNKNOWN, "start_time": "abc"},
        {"hash": UNKNOWN, "cur_time": "nan"},
        {"hash": UNKNOWN, "start_time": "inf"},
        {"hash": UNKNOWN, "start_time": "5", "cur_time": "4"},
    ],
)
def test_get_cpu_refuses_bad_arguments(client: TestClient, params: dict) -> None:
    result = client.simulate_get("/cpu", params=params)
    assert _is_bad_arguments(result.status_code, result.json)


def test_body_over_the_limit_is_413(client: TestClient) -> None:
    body = json.dumps({"user": "a" * 5000, "passwd": "pw"})
    result = client.simulate_post("/register", body=body)
    assert (result.status_code, result.json) == (413, {"reason": "Request body too large"})


def test_unknown_path_and_wrong_method_answer_json(client: TestClient) -> None:
    missing = client.simulate_get("/nowhere")
    assert missing.status_code == 404 and "reason" in missing.json
    wrong = client.simulate_delete("/cpu")
    assert wrong.status_code == 405 and "reason" in wrong.json


def test_health_and_readiness(client: TestClient) -> None:
    assert client.simulate_get("/healthz").json == {"status": "ok"}
    assert client.simulate_get("/readyz").json == {"status": "ok", "storage": "memory"}


def test_a_domain_error_nobody_mapped_is_a_logged_500_in_json(
    accounts: Accounts, history: History, access: Access, caplog: pytest.LogCaptureFixture
) -> None:
    def unreadable() -> None:
        raise LegacySourceUnreadable("no answer")

    app = create_app(accounts, history, access, storage_name="memory", check_storage=unreadable)

    result = TestClient(app).simulate_get("/readyz")

    assert (result.status_code, result.json) == (500, {"reason": "Internal error"})
    assert any(record.levelname == "ERROR" for record in caplog.records)
