"""Hosts with real-looking samples of the whole metric catalogue, posted over HTTP (POST /samples).

Shared by tests/integration/test_fleet_browser.py and docs/screenshots.py.
"""

from __future__ import annotations

import math
import random
from typing import Any

import requests

Sample = dict[str, Any]


def catalogue_samples(end: float, count: int, seed: int = 7, skip: range = range(0)) -> list[Sample]:
    """`count` samples at 1 Hz ending at `end`, each with the catalogue's metrics but temp (PROTOCOL.md
    part 3: % for cpu/mem/swap/disk, load averages, bytes/s for disk and network), from a fixed seed;
    the indexes in `skip` are left out (a gap)."""
    noise = random.Random(seed)
    samples = []
    for i in range(count):
        if i in skip:
            continue
        phase = (i / 300) + seed
        cpu = 35 + 25 * math.sin(phase) + noise.gauss(0, 5)
        samples.append(
            {
                "time": end - (count - 1 - i),
                "metrics": {
                    "cpu": round(min(100.0, max(0.0, cpu)), 2),
                    "mem": round(52 + 6 * math.sin(phase / 4) + noise.random(), 2),
                    "swap": 2.5,
                    "load1": round(max(0.0, 1.4 + math.sin(phase) + noise.gauss(0, 0.1)), 2),
                    "load5": round(1.2 + 0.3 * math.sin(phase / 5), 2),
                    "load15": 1.05,
                    "disk": 61.8,
                    "disk_read": round(max(0.0, 2e6 * (1 + math.sin(2 * phase)) + noise.gauss(0, 2e5))),
                    "disk_write": round(max(0.0, 6e5 * (1 + math.cos(phase)) + noise.gauss(0, 5e4))),
                    "net_rx": round(max(0.0, 1.2e7 * (1 + math.sin(phase)) + noise.gauss(0, 1e6))),
                    "net_tx": round(max(0.0, 3e6 * (1 + math.cos(3 * phase)) + noise.gauss(0, 2e5))),
                },
            }
        )
    return samples


def log_in_on_host(base_url: str, user: str, passwd: str, host: str) -> str:
    """A new session of the user on `host` (PROTOCOL.md part 3, POST /login with "host"); its hash."""
    body = {"user": user, "passwd": passwd, "host": host}
    answer = requests.post(f"{base_url}/login", json=body, timeout=10)
    answer.raise_for_status()
    token: str = answer.json()["hash"]
    return token


def post_samples(base_url: str, token: str, samples: list[Sample]) -> None:
    """POST /samples in batches of 10,000 (the protocol's limit per request)."""
    for first in range(0, len(samples), 10_000):
        batch = samples[first : first + 10_000]
        answer = requests.post(f"{base_url}/samples", json={"hash": token, "samples": batch}, timeout=30)
        answer.raise_for_status()
