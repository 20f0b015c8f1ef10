"""CSV export, `GET /cpu?format=csv` (PROTOCOL.md part 2), through Falcon's test client."""

from __future__ import annotations

import pytest
from falcon.testing import TestClient

from tests.unit.api_calls import register


def test_csv_export_is_a_spreadsheet_of_exact_values(client: TestClient) -> None:
    token = register(client)
    client.simulate_post(
        "/cpu", json={"hash": token, "samples": [{"cpu": 0.1 + 0.2, "time": 2.5}, {"cpu": 3, "time": 1}]}
    )
    result = client.simulate_get("/cpu", params={"hash": token, "format": "csv"})
    assert result.status_code == 200 and result.headers["content-type"].startswith("text/csv")
    assert result.text == "cpu,time\n3.0,1.0\n0.30000000000000004,2.5\n"


def test_csv_of_an_empty_session_is_just_the_header(client: TestClient) -> None:
    token = register(client)
    assert client.simulate_get("/cpu", params={"hash": token, "format": "csv"}).text == "cpu,time\n"


@pytest.mark.parametrize("params", [{"format": "xml"}, {"format": "csv", "step": "60"}])
def test_unknown_formats_and_csv_with_step_are_400(client: TestClient, params: dict[str, str]) -> None:
    token = register(client)
    assert client.simulate_get("/cpu", params={"hash": token, **params}).status_code == 400
