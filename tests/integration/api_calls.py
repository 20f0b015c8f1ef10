"""The calls that tests of a served perfmon make over and over, over real HTTP."""

from __future__ import annotations

import uuid

import requests

# A well-formed session hash that names no session.
UNKNOWN = "3f1c1b7e-8a1d-4c55-9a7e-0d9f0b6f5a21"


def open_account(url: str) -> tuple[str, str]:
    """Register a user of a fresh name (password "pw"): its name and the hash of its first session."""
    name = f"user-{uuid.uuid4().hex[:8]}"
    answer = requests.post(f"{url}/register", json={"user": name, "passwd": "pw"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return name, answer.json()["hash"]


def read_cpu(url: str, token: str, **params: object) -> requests.Response:
    """The answer to GET /cpu with these parameters beside the hash."""
    return requests.get(f"{url}/cpu", params={"hash": token, **params}, timeout=60)


def sample_batch(size: int, start: float = 1_700_000_000.0) -> list[dict[str, float]]:
    """Valid samples a second apart from `start`, with varied cpu values."""
    return [{"cpu": (i * 37 % 1000) / 10, "time": start + i} for i in range(size)]
