"""PROTOCOL.md part 2 through Falcon's test client over in-memory storage."""

from __future__ import annotations

import pytest
from falcon.testing import TestClient

UNKNOWN = "3f1c1b7e-8a1d-4c55-9a7e-0d9f0b6f5a21"


def _register(client: TestClient, user: str = "alice") -> str:
    return client.simulate_post("/register", json={"user": user, "passwd": "pw"}).json["hash"]


def _login(client: TestClient, user: str = "alice") -> str:
    return client.simulate_post("/login", json={"user": user, "passwd": "pw"}).json["hash"]


def _samples(client: TestClient, token: str, **params: str) -> list[dict]:
    result = client.simulate_get("/cpu", params={"hash": token, **params})
    assert result.status_code == 200, result.text
    return result.json["payload"]


def test_a_batch_is_stored_whole_and_counted(client: TestClient) -> None:
    token = _register(client)
    batch = [{"cpu": float(i), "time": 100.0 + i} for i in range(50)]
    result = client.simulate_post("/cpu", json={"hash": token, "samples": batch})
    assert (result.status_code, result.json) == (200, {"stored": 50})
    assert _samples(client, token) == [{"cpu": s["cpu"], "timestamp": s["time"]} for s in batch]


@pytest.mark.parametrize(
    ("batch", "reason"),
    [
        ([{"cpu": 1, "time": 1}, {"cpu": -1, "time": 1}], "Bad arguments: samples[1] "),
        (
            [{"cpu": 1, "time": 1}, {"cpu": 1, "time": 2}, {"cpu": True, "time": 1}],
            "Bad arguments: samples[2] ",
        ),
        ([[1, 2]], "Bad arguments: samples[0] "),
        ([], "Bad arguments: samples must be a list of 1..10000 samples"),
        ({"cpu": 1, "time": 1}, "Bad arguments: samples must be a list of 1..10000 samples"),
    ],
)
def test_a_bad_batch_names_the_first_bad_sample_and_stores_none(
    client: TestClient, batch: object, reason: str
) -> None:
    token = _register(client)
    result = client.simulate_post("/cpu", json={"hash": token, "samples": batch})
    assert result.status_code == 400 and result.json["reason"].startswith(reason)
    assert _samples(client, token) == []


def test_a_batch_over_ten_thousand_is_refused(client: TestClient) -> None:
    token = _register(client)
    # The unit client's body limit is small, so send the count that matters with minimal samples.
    result = client.simulate_post("/cpu", json={"hash": token, "samples": [0] * 10_001})
    assert result.status_code in (400, 413)
    assert _samples(client, token) == []


def test_a_batch_to_an_unknown_session_is_401(client: TestClient) -> None:
    result = client.simulate_post("/cpu", json={"hash": UNKNOWN, "samples": [{"cpu": 1, "time": 1}]})
    assert result.status_code == 401


def test_sessions_lists_the_users_sessions_with_their_sample_counts(client: TestClient) -> None:
    first = _register(client)
    second = _login(client)
    client.simulate_post(
        "/cpu", json={"hash": first, "samples": [{"cpu": 1, "time": 20}, {"cpu": 2, "time": 10}]}
    )
    _register(client, "bob")
    result = client.simulate_get("/sessions", params={"hash": second})
    assert result.status_code == 200
    # The fixed test clock gives both sessions one creation time: newest first falls back to the later one.
    assert result.json == {
        "payload": [
            {"session": second, "created": 1_700_000_000.0, "samples": 0, "first": None, "last": None},
            {"session": first, "created": 1_700_000_000.0, "samples": 2, "first": 10.0, "last": 20.0},
        ]
    }


def test_sessions_with_an_unknown_or_malformed_hash(client: TestClient) -> None:
    assert client.simulate_get("/sessions", params={"hash": UNKNOWN}).status_code == 401
    assert client.simulate_get("/sessions", params={"hash": "x"}).status_code == 400
    assert client.simulate_get("/sessions").status_code == 400


def test_another_session_of_the_same_user_is_readable(client: TestClient) -> None:
    first = _register(client)
    client.simulate_post("/cpu", json={"hash": first, "cpu": 5.0, "time": 1.0})
    second = _login(client)
    assert _samples(client, second, session=first) == [{"cpu": 5.0, "timestamp": 1.0}]


def test_another_users_session_is_404_like_a_missing_one(client: TestClient) -> None:
    alices = _register(client)
    client.simulate_post("/cpu", json={"hash": alices, "cpu": 5.0, "time": 1.0})
    bobs = _register(client, "bob")
    for session in (alices, UNKNOWN):
        result = client.simulate_get("/cpu", params={"hash": bobs, "session": session})
        assert (result.status_code, result.json) == (404, {"reason": "No such session"})
    assert client.simulate_get("/cpu", params={"hash": bobs, "session": "nope"}).status_code == 400


def test_step_downsamples_into_buckets(client: TestClient) -> None:
    token = _register(client)
    batch = [{"cpu": float(c), "time": t} for c, t in [(10, 0), (20, 30), (5, 60), (7, 119.5), (1, 300)]]
    client.simulate_post("/cpu", json={"hash": token, "samples": batch})
    assert _samples(client, token, step="60") == [
        {"timestamp": 0.0, "cpu": 15.0, "min": 10.0, "max": 20.0, "count": 2},
        {"timestamp": 60.0, "cpu": 6.0, "min": 5.0, "max": 7.0, "count": 2},
        {"timestamp": 300.0, "cpu": 1.0, "min": 1.0, "max": 1.0, "count": 1},
    ]
    assert _samples(client, token, step="60", start_time="60", cur_time="200") == [
        {"timestamp": 60.0, "cpu": 6.0, "min": 5.0, "max": 7.0, "count": 2}
    ]


@pytest.mark.parametrize("step", ["0", "-5", "nan", "inf", "x"])
def test_step_must_be_a_positive_number(client: TestClient, step: str) -> None:
    token = _register(client)
    result = client.simulate_get("/cpu", params={"hash": token, "step": step})
    assert result.status_code == 400 and result.json["reason"].startswith("Bad arguments")


def test_csv_export_is_a_spreadsheet_of_exact_values(client: TestClient) -> None:
    token = _register(client)
    client.simulate_post(
        "/cpu", json={"hash": token, "samples": [{"cpu": 0.1 + 0.2, "time": 2.5}, {"cpu": 3, "time": 1}]}
    )
    result = client.simulate_get("/cpu", params={"hash": token, "format": "csv"})
    assert result.status_code == 200 and result.headers["content-type"].startswith("text/csv")
    assert result.text == "cpu,time\n3.0,1.0\n0.30000000000000004,2.5\n"


def test_csv_of_an_empty_session_is_just_the_header(client: TestClient) -> None:
    token = _register(client)
    assert client.simulate_get("/cpu", params={"hash": token, "format": "csv"}).text == "cpu,time\n"


@pytest.mark.parametrize("params", [{"format": "xml"}, {"format": "csv", "step": "60"}])
def test_unknown_formats_and_csv_with_step_are_400(client: TestClient, params: dict) -> None:
    token = _register(client)
    assert client.simulate_get("/cpu", params={"hash": token, **params}).status_code == 400
