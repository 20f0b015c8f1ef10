"""Downsampled reads, `GET /cpu?step=` (PROTOCOL.md part 2), over real HTTP to a waitress server, in
both storage modes: the buckets are computed by the storage."""

from __future__ import annotations

import requests

from tests.integration.api_calls import open_account, read_cpu


def test_step_returns_buckets_computed_by_the_storage(server_url: str) -> None:
    _, token = open_account(server_url)
    batch = [{"cpu": float(i % 10), "time": 1_700_000_000.0 + i} for i in range(600)]
    requests.post(f"{server_url}/cpu", json={"hash": token, "samples": batch}, timeout=30)
    buckets = read_cpu(server_url, token, step=60).json()["payload"]
    assert len(buckets) == 11  # 1_700_000_000 is 20 s into its minute: 40 + 9 x 60 + 20 samples
    assert buckets[0] == {
        "timestamp": 1_699_999_980.0,
        "cpu": buckets[0]["cpu"],
        "min": 0.0,
        "max": 9.0,
        "count": 40,
    }
    assert sum(b["count"] for b in buckets) == 600
    assert abs(buckets[1]["cpu"] - 4.5) < 1e-9
