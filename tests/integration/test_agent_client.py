"""The agent's HTTP client and its duplicate check against a real server, on each storage: multi-metric
samples on a host (PROTOCOL.md part 3)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from perfmon.agent.adapters.http_client import ServerClient
from perfmon.agent.adapters.spool import Spool
from perfmon.agent.model import Sample
from perfmon.agent.ports import (
    AlreadyRegistered,
    CredentialsRefused,
    Rejected,
    ServerUnavailable,
    SessionExpired,
)
from perfmon.agent.sender import Sender
from perfmon.agent.status import StatusReport

SAMPLES = [
    Sample({"cpu": 0.1 + 0.2, "net_rx": 1e9 / 3, "temp": -1.5 - n}, 1_700_000_000.123456789 + n)
    for n in range(3)
]
NAMES = ["cpu", "net_rx", "temp"]


def _values(samples: list[Sample]) -> set[tuple[str, float, float]]:
    return {(name, s.taken_at, value) for s in samples for name, value in s.metrics.items()}


UNKNOWN_SESSION = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def client(server_url: str) -> ServerClient:
    return ServerClient(server_url, "agent-user", "agent-password", "web-1", timeout=5)


def test_what_the_client_posts_reads_back_exactly(client: ServerClient) -> None:
    token = client.register()
    client.post_samples(token, SAMPLES)

    assert client.stored_values(token, NAMES, SAMPLES[1].taken_at, SAMPLES[2].taken_at) == _values(
        SAMPLES[1:]
    )


def test_the_server_answers_become_the_client_errors(client: ServerClient) -> None:
    with pytest.raises(CredentialsRefused, match="Wrong credentials"):
        client.log_in()
    client.register()
    with pytest.raises(AlreadyRegistered):
        client.register()
    with pytest.raises(SessionExpired):
        client.post_samples(UNKNOWN_SESSION, SAMPLES)
    with pytest.raises(Rejected, match="samples") as rejection:
        client.post_samples(client.log_in(), [SAMPLES[0], Sample({"cpu": -1.0}, 1.0)])
    assert rejection.value.sample_index == 1


def test_a_server_that_is_not_there_is_unavailable() -> None:
    with pytest.raises(ServerUnavailable, match="no answer"):
        ServerClient("http://127.0.0.1:9", "agent-user", "agent-password", "web-1", timeout=1).log_in()


def test_a_new_agent_does_not_resend_what_the_server_already_has(
    client: ServerClient, tmp_path: Path
) -> None:
    token = client.register()
    with Spool(tmp_path / "spool", limit=100) as spool:
        for sample in SAMPLES:
            spool.append(sample)
        client.post_samples(token, SAMPLES[:2])  # an earlier agent's last post, never acknowledged

        sender = Sender(client, spool, StatusReport())
        while sender.send_one_batch():
            pass

    assert client.stored_values(client.log_in(), NAMES, 0, 1e11) == _values(SAMPLES)
    with requests.Session() as http:
        token = http.post(
            f"{client.base_url}/login", json={"user": "agent-user", "passwd": "agent-password"}, timeout=5
        ).json()["hash"]
        answer = http.get(
            f"{client.base_url}/samples",
            params={"hash": token, "host": "web-1", "metric": ["cpu", "temp"]},
            timeout=5,
        ).json()["payload"]
    # Exactly once each: the batch the earlier agent sent was not sent again.
    assert [row["value"] for row in answer["temp"]] == [-1.5, -2.5, -3.5]
    assert [row["timestamp"] for row in answer["cpu"]] == [s.taken_at for s in SAMPLES]
