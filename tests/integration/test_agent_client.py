"""The agent's HTTP client and its duplicate check against a real server, on each storage."""

from __future__ import annotations

from pathlib import Path

import pytest

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

SAMPLES = [Sample(0.1 + 0.2, 1_700_000_000.123456789 + n) for n in range(3)]
UNKNOWN_SESSION = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def client(server_url: str) -> ServerClient:
    return ServerClient(server_url, "agent-user", "agent-password", timeout=5)


def test_what_the_client_posts_reads_back_exactly(client: ServerClient) -> None:
    token = client.register()
    client.post_samples(token, SAMPLES)

    [session] = client.sessions(token)
    assert (session.token, session.first, session.last) == (token, SAMPLES[0].taken_at, SAMPLES[-1].taken_at)
    assert client.stored_samples(token, token, SAMPLES[1].taken_at, SAMPLES[2].taken_at) == SAMPLES[1:]


def test_the_server_answers_become_the_client_errors(client: ServerClient) -> None:
    with pytest.raises(CredentialsRefused, match="Wrong credentials"):
        client.log_in()
    client.register()
    with pytest.raises(AlreadyRegistered):
        client.register()
    with pytest.raises(SessionExpired):
        client.post_samples(UNKNOWN_SESSION, SAMPLES)
    with pytest.raises(Rejected, match="samples") as rejection:
        client.post_samples(client.log_in(), [SAMPLES[0], Sample(-1.0, 1.0)])
    assert rejection.value.sample_index == 1


def test_a_server_that_is_not_there_is_unavailable() -> None:
    with pytest.raises(ServerUnavailable, match="no answer"):
        ServerClient("http://127.0.0.1:9", "agent-user", "agent-password", timeout=1).log_in()


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

    stored = [
        s for session in client.sessions(token) for s in client.stored_samples(token, session.token, 0, 1e11)
    ]
    assert sorted(stored, key=lambda s: s.taken_at) == SAMPLES
