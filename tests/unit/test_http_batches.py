"""Batch ingest (PROTOCOL.md part 2) through Falcon's test client over in-memory storage."""

from __future__ import annotations

import json

import pytest
from falcon.testing import TestClient

from tests.unit.api_calls import UNKNOWN, read_samples, register


def test_a_batch_is_stored_whole_and_counted(client: TestClient) -> None:
    token = register(client)
    batch = [{"cpu": float(i), "time": 100.0 + i} for i in range(50)]
    result = client.simulate_post("/cpu", json={"hash": token, "samples": batch})
    assert (result.status_code, result.json) == (200, {"stored": 50})
    assert read_samples(client, token) == [{"cpu": s["cpu"], "timestamp": s["time"]} for s in batch]


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
    token = register(client)
    result = client.simulate_post("/cpu", json={"hash": token, "samples": batch})
    assert result.status_code == 400 and result.json["reason"].startswith(reason)
    assert read_samples(client, token) == []


def test_a_batch_body_over_the_body_limit_is_413_and_stores_nothing(client: TestClient) -> None:
    # The unit client's limit is 4 KiB: the body is refused before any sample is looked at.
    token = register(client)
    body = json.dumps({"hash": token, "samples": [{"cpu": 1, "time": 1}] * 300})
    result = client.simulate_post("/cpu", body=body, headers={"Content-Type": "application/json"})
    assert (result.status_code, result.json) == (413, {"reason": "Request body too large"})
    assert read_samples(client, token) == []


def test_a_batch_to_an_unknown_session_is_401(client: TestClient) -> None:
    result = client.simulate_post("/cpu", json={"hash": UNKNOWN, "samples": [{"cpu": 1, "time": 1}]})
    assert (result.status_code, result.json) == (
        401,
        {"reason": "Not authorized user try to post data, please login"},
    )
