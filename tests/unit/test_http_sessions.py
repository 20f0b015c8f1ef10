"""A user's sessions, `GET /sessions` and `GET /cpu?session=` (PROTOCOL.md part 2), through Falcon's
test client over in-memory storage."""

from __future__ import annotations

from falcon.testing import TestClient

from tests.unit.api_calls import UNKNOWN, log_in, read_samples, register


def test_sessions_lists_the_users_sessions_with_their_sample_counts(client: TestClient) -> None:
    first = register(client)
    second = log_in(client)
    client.simulate_post(
        "/cpu", json={"hash": first, "samples": [{"cpu": 1, "time": 20}, {"cpu": 2, "time": 10}]}
    )
    register(client, "bob")
    result = client.simulate_get("/sessions", params={"hash": second})
    assert result.status_code == 200
    # The fixed test clock gives both sessions one creation time: newest first falls back to the later one.
    # Part 3: each entry names its host, null for sessions opened without one.
    assert result.json == {
        "payload": [
            {
                "session": second,
                "created": 1_700_000_000.0,
                "samples": 0,
                "first": None,
                "last": None,
                "host": None,
            },
            {
                "session": first,
                "created": 1_700_000_000.0,
                "samples": 2,
                "first": 10.0,
                "last": 20.0,
                "host": None,
            },
        ]
    }


def test_sessions_with_an_unknown_or_malformed_hash(client: TestClient) -> None:
    assert client.simulate_get("/sessions", params={"hash": UNKNOWN}).status_code == 401
    assert client.simulate_get("/sessions", params={"hash": "x"}).status_code == 400
    assert client.simulate_get("/sessions").status_code == 400


def test_another_session_of_the_same_user_is_readable(client: TestClient) -> None:
    first = register(client)
    client.simulate_post("/cpu", json={"hash": first, "cpu": 5.0, "time": 1.0})
    second = log_in(client)
    assert read_samples(client, second, session=first) == [{"cpu": 5.0, "timestamp": 1.0}]


def test_another_users_session_is_404_like_a_missing_one(client: TestClient) -> None:
    alices = register(client)
    client.simulate_post("/cpu", json={"hash": alices, "cpu": 5.0, "time": 1.0})
    bobs = register(client, "bob")
    for session in (alices, UNKNOWN):
        result = client.simulate_get("/cpu", params={"hash": bobs, "session": session})
        assert (result.status_code, result.json) == (404, {"reason": "No such session"})
    assert client.simulate_get("/cpu", params={"hash": bobs, "session": "nope"}).status_code == 400


def test_sessions_count_and_span_only_the_cpu_series_of_a_session(client: TestClient) -> None:
    # Part 3 changes nothing of part 2's figures: `samples`, `first` and `last` are those of `cpu`, so a
    # session that posted other metrics only lists none (as openapi.json and docs/protocol.md say).
    token = register(client)
    for moment, metrics in ((5.0, {"mem": 41.0}), (6.0, {"mem": 42.0, "cpu": 3.0}), (7.0, {"load1": 0.5})):
        posted = client.simulate_post("/samples", json={"hash": token, "time": moment, "metrics": metrics})
        assert posted.status_code == 200, posted.text

    (entry,) = client.simulate_get("/sessions", params={"hash": token}).json["payload"]

    assert (entry["samples"], entry["first"], entry["last"]) == (1, 6.0, 6.0)
