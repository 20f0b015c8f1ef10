"""CSV export, `GET /cpu?format=csv` (PROTOCOL.md part 2), over real HTTP to a waitress server, in both
storage modes."""

from __future__ import annotations

import csv
import io

import requests

from tests.integration.api_calls import open_account, read_cpu, sample_batch


def test_csv_export_round_trips_every_sample(server_url: str) -> None:
    _, token = open_account(server_url)
    batch = sample_batch(2_000)
    requests.post(f"{server_url}/cpu", json={"hash": token, "samples": batch}, timeout=30)
    answer = read_cpu(server_url, token, format="csv", start_time=1_700_000_000.0)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["cpu", "time"]
    assert [(float(c), float(t)) for c, t in rows[1:]] == [(s["cpu"], s["time"]) for s in batch]
