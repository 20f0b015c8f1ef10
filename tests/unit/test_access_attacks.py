"""What a hostile or careless client can put in a request path, when the server then fails: the log line of
an unexpected error (500) names the request, and must hold no access key (PROTOCOL.md part 4: a client's
DELETE /keys/<key> instead of its id), no session hash, and no forged line of its own."""

from __future__ import annotations

import logging

import pytest
from falcon.testing import TestClient

from perfmon.adapters.memory import (
    InMemoryKeyRepository,
    InMemorySampleRepository,
    InMemorySessionRepository,
)
from perfmon.domain.access import Access, KeyUsage, SessionGate
from perfmon.domain.accounts import Accounts
from perfmon.domain.history import History
from perfmon.domain.model import Session
from perfmon.entrypoints.http.app import create_app
from tests.fakes import FixedClock, SequentialKeys

KEY = "pmk_" + "Q" * 43
TOKEN = "0b7e7a2e-5a55-4d1c-9d0e-6f0c3c1f2a11"


class BrokenSessions(InMemorySessionRepository):
    """Sessions whose lookup fails as nothing foreseen does: a bug's error, answered 500."""

    def get(self, token: str) -> Session | None:
        raise RuntimeError("the session lookup broke")


@pytest.fixture
def broken_client(
    accounts: Accounts, keys: InMemoryKeyRepository, samples: InMemorySampleRepository, clock: FixedClock
) -> TestClient:
    sessions = BrokenSessions()
    gate = SessionGate(sessions, KeyUsage(keys, clock))
    app = create_app(
        accounts,
        History(gate, sessions, samples, clock),
        Access(gate, sessions, keys, SequentialKeys(), clock),
        storage_name="memory",
        check_storage=lambda: None,
    )
    return TestClient(app)


@pytest.mark.parametrize(
    "path",
    [
        f"/keys/{KEY}",  # the key where its id belongs
        f"/keys/{TOKEN}",  # a session hash where the id belongs
        f"/keys/{TOKEN.replace('-', '')}",  # the same without its hyphens
        f"/keys/{KEY[:20]}",  # a key cut short: still most of a secret
    ],
)
def test_a_500_on_a_path_holding_a_secret_logs_no_secret(
    broken_client: TestClient, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    caplog.set_level(logging.DEBUG)

    result = broken_client.simulate_delete(path, params={"hash": TOKEN})

    assert (result.status_code, result.json) == (500, {"reason": "Internal error"})
    logged = "\n".join(caplog.handler.format(record) for record in caplog.records)
    assert "unexpected error answering DELETE /keys/" in logged
    for secret in (KEY[4:20], TOKEN, TOKEN.replace("-", "")):
        assert secret not in logged


def test_a_500_on_a_path_with_a_newline_forges_no_log_line(
    broken_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    result = broken_client.simulate_delete(
        "/keys/0123456789abcdef\nCRITICAL perfmon: forged", params={"hash": TOKEN}
    )

    assert result.status_code == 500
    first_lines = [record.getMessage().splitlines()[0] for record in caplog.records]
    assert not any("forged" in line and "unexpected error" not in line for line in first_lines)
    assert all("\nCRITICAL" not in record.getMessage() for record in caplog.records)
