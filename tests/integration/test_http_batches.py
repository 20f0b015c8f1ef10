"""Batch ingest (PROTOCOL.md part 2) over real HTTP to a waitress server, in both storage modes."""

from __future__ import annotations

import json

import requests

from tests.integration.api_calls import open_account, read_cpu, sample_batch

TOO_MANY = "samples must be a list of 1..10000 samples"


def test_a_batch_of_ten_thousand_is_stored_with_one_request(server_url: str) -> None:
    _, token = open_account(server_url)
    batch = sample_batch(10_000)
    answer = requests.post(f"{server_url}/cpu", json={"hash": token, "samples": batch}, timeout=60)
    assert (answer.status_code, answer.json()) == (200, {"stored": 10_000})
    payload = read_cpu(server_url, token).json()["payload"]
    assert payload == [{"cpu": s["cpu"], "timestamp": s["time"]} for s in batch]


def test_a_bad_sample_at_index_9999_stores_none(server_url: str) -> None:
    _, token = open_account(server_url)
    batch = sample_batch(10_000)
    batch[9_999] = {"cpu": -1.0, "time": 1.0}
    answer = requests.post(f"{server_url}/cpu", json={"hash": token, "samples": batch}, timeout=60)
    assert answer.status_code == 400 and answer.json()["reason"].startswith("Bad arguments: samples[9999] ")
    assert read_cpu(server_url, token).json() == {"payload": []}


def test_a_batch_of_ten_thousand_and_one_valid_samples_is_400_and_stores_none(server_url: str) -> None:
    _, token = open_account(server_url)
    # Compact JSON keeps 10,001 real samples well under the default body limit (1 MiB), which the test
    # servers keep: the count is what is refused, not the size (that would be a 413).
    body = json.dumps({"hash": token, "samples": sample_batch(10_001)}, separators=(",", ":"))
    assert len(body) < 1024 * 1024
    answer = requests.post(
        f"{server_url}/cpu", data=body, headers={"Content-Type": "application/json"}, timeout=60
    )
    assert (answer.status_code, answer.json()) == (
        400,
        {"reason": f"Bad arguments: {TOO_MANY}", "detail": TOO_MANY},
    )
    assert read_cpu(server_url, token).json() == {"payload": []}
