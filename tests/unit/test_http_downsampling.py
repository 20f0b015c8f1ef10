"""Downsampled reads, `GET /cpu?step=` (PROTOCOL.md part 2), through Falcon's test client."""

from __future__ import annotations

import pytest
from falcon.testing import TestClient

from tests.unit.api_calls import read_samples, register


def test_step_downsamples_into_buckets(client: TestClient) -> None:
    token = register(client)
    batch = [{"cpu": float(c), "time": t} for c, t in [(10, 0), (20, 30), (5, 60), (7, 119.5), (1, 300)]]
    client.simulate_post("/cpu", json={"hash": token, "samples": batch})
    assert read_samples(client, token, step="60") == [
        {"timestamp": 0.0, "cpu": 15.0, "min": 10.0, "max": 20.0, "count": 2},
        {"timestamp": 60.0, "cpu": 6.0, "min": 5.0, "max": 7.0, "count": 2},
        {"timestamp": 300.0, "cpu": 1.0, "min": 1.0, "max": 1.0, "count": 1},
    ]
    assert read_samples(client, token, step="60", start_time="60", cur_time="200") == [
        {"timestamp": 60.0, "cpu": 6.0, "min": 5.0, "max": 7.0, "count": 2}
    ]


@pytest.mark.parametrize("step", ["0", "-5", "nan", "inf", "x"])
def test_step_must_be_a_positive_number(client: TestClient, step: str) -> None:
    token = register(client)
    result = client.simulate_get("/cpu", params={"hash": token, "step": step})
    assert result.status_code == 400 and result.json["reason"].startswith("Bad arguments")
