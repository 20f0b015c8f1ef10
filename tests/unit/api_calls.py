"""The calls that tests of the HTTP API make over and over, through Falcon's test client."""

from __future__ import annotations

from typing import Any

from falcon.testing import TestClient

# A well-formed session hash that names no session.
UNKNOWN = "3f1c1b7e-8a1d-4c55-9a7e-0d9f0b6f5a21"


def register(client: TestClient, user: str = "alice") -> str:
    """Register the user (password "pw") and return the hash of its first session."""
    result = client.simulate_post("/register", json={"user": user, "passwd": "pw"})
    assert result.status_code == 200, result.text
    return result.json["hash"]


def log_in(client: TestClient, user: str = "alice") -> str:
    """Log the user in (password "pw") and return the new session's hash."""
    result = client.simulate_post("/login", json={"user": user, "passwd": "pw"})
    assert result.status_code == 200, result.text
    return result.json["hash"]


def read_samples(client: TestClient, token: str, **params: str) -> list[dict[str, Any]]:
    """The payload of a successful GET /cpu with these parameters beside the hash."""
    result = client.simulate_get("/cpu", params={"hash": token, **params})
    assert result.status_code == 200, result.text
    return result.json["payload"]
