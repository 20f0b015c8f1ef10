"""The database goes away under a running `perfmon serve --storage db` and comes back: meanwhile every
storage call answers 503 with Retry-After within seconds (never a 500, never a hang), and afterwards the
same process serves again by itself, with every acknowledged sample there exactly once."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import make_url

from tests.postgres_server import (
    Cluster,
    give_up,
    migrated_database,
    own_cluster,
    server_binaries,
    terminate_backends,
)
from tests.servers import ServerProcess, start_server_process

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

UNAVAILABLE = {"reason": "Storage unavailable, retry later"}
CLIENT_TIMEOUT = 10  # seconds: a client that waits this long has met a hang, not an answer
ANSWER_WITHIN = 5  # seconds any answer may take while the database is down
RECOVERY_WITHIN = 15  # seconds from the database's return to the server's readiness
BEFORE, AFTER = 50, 10  # samples posted before the outage and after the recovery
START = 1_700_000_000.0


class Client:
    """HTTP calls to one server that record every status and fail the test on a client timeout."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.statuses: list[int] = []
        self._http = requests.Session()

    def call(self, method: str, path: str, **options: Any) -> requests.Response:
        try:
            answer = self._http.request(method, f"{self.base_url}{path}", timeout=CLIENT_TIMEOUT, **options)
        except requests.Timeout:
            pytest.fail(f"{method} {path}: no answer within {CLIENT_TIMEOUT} s")
        self.statuses.append(answer.status_code)
        return answer

    def close(self) -> None:
        self._http.close()


def _sample(i: int) -> dict[str, float]:
    return {"cpu": i / 4, "time": START + i}


def _init_db(url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "perfmon", "init-db", "--database-url", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A cluster of this test's own, since the test stops it; deleted, with its databases, at the end."""
    bin_dir = server_binaries()
    if bin_dir is None:
        give_up("the outage test stops a PostgreSQL cluster of its own: it needs initdb and pg_ctl")
    with own_cluster(bin_dir) as own:
        yield own


def _assert_unavailable(answer: requests.Response, what: str) -> None:
    assert (answer.status_code, answer.json()) == (503, UNAVAILABLE), (what, answer.text)
    assert int(answer.headers["Retry-After"]) > 0, what
    assert answer.elapsed.total_seconds() < ANSWER_WITHIN, (what, answer.elapsed)


def test_a_stopped_database_gives_503s_then_the_same_process_recovers(cluster: Cluster) -> None:
    url = make_url(cluster.url).set(database="perfmon").render_as_string(hide_password=False)
    _init_db(url)
    server = start_server_process("--storage", "db", "--database-url", url)
    client = Client(server.url)
    try:
        _outage_and_recovery(cluster, server, client)
    finally:
        client.close()
        status = server.stop()
    assert status == 0
    log = "".join(server.log)
    assert "storage unavailable" in log  # the 503s are logged, as warnings ...
    assert "Traceback" not in log  # ... and nothing went the unexpected-error way


def _outage_and_recovery(cluster: Cluster, server: ServerProcess, client: Client) -> None:
    credentials = {"user": "outage", "passwd": "pw"}
    token = client.call("POST", "/register", json=credentials).json()["hash"]
    for i in range(BEFORE):
        answer = client.call("POST", "/cpu", json={"hash": token, **_sample(i)})
        assert answer.status_code == 200, answer.text

    cluster.stop("fast")
    # Twice: first the pooled connections are found dead, then new ones are refused.
    for _ in range(2):
        down = client.call("POST", "/cpu", json={"hash": token, "cpu": 99.0, "time": START - 1})
        _assert_unavailable(down, "POST /cpu")
        _assert_unavailable(client.call("GET", "/cpu", params={"hash": token}), "GET /cpu")
        _assert_unavailable(client.call("GET", "/readyz"), "GET /readyz")
        _assert_unavailable(client.call("POST", "/login", json=credentials), "POST /login")
        _assert_unavailable(
            client.call("POST", "/register", json={"user": "during", "passwd": "pw"}), "POST /register"
        )
        alive = client.call("GET", "/healthz")
        assert (alive.status_code, alive.json()) == (200, {"status": "ok"})

    cluster.start()
    deadline = time.monotonic() + RECOVERY_WITHIN
    while (ready := client.call("GET", "/readyz")).status_code != 200:
        assert ready.status_code == 503, ready.text
        assert time.monotonic() < deadline, f"not ready {RECOVERY_WITHIN} s after the database came back"
        time.sleep(0.2)
    assert ready.json() == {"status": "ok", "storage": "db"}
    assert server.process.poll() is None  # the same process, never restarted

    for i in range(BEFORE, BEFORE + AFTER):
        answer = client.call("POST", "/cpu", json={"hash": token, **_sample(i)})
        assert answer.status_code == 200, answer.text
    read = client.call("GET", "/cpu", params={"hash": token})
    expected = [{"cpu": s["cpu"], "timestamp": s["time"]} for s in map(_sample, range(BEFORE + AFTER))]
    assert (read.status_code, read.json()) == (200, {"payload": expected})
    assert client.call("POST", "/login", json=credentials).status_code == 200
    assert client.call("POST", "/register", json={"user": "during", "passwd": "pw"}).status_code == 200

    assert 500 not in client.statuses
    assert set(client.statuses) <= {200, 503}


def test_killed_connections_cost_the_server_process_no_failed_request(postgres_server_url: str) -> None:
    """The weaker outage, on the shared server (it also runs where no cluster of our own can be had):
    every connection of the server is killed, and the next requests reconnect without an error."""
    with migrated_database(postgres_server_url) as url:
        server = start_server_process("--storage", "db", "--database-url", url)
        client = Client(server.url)
        try:
            token = client.call("POST", "/register", json={"user": "killed", "passwd": "pw"}).json()["hash"]
            for i in range(BEFORE):
                assert client.call("POST", "/cpu", json={"hash": token, **_sample(i)}).status_code == 200
            assert terminate_backends(postgres_server_url, make_url(url).database or "") >= 1
            assert client.call("GET", "/readyz").status_code == 200
            for i in range(BEFORE, BEFORE + AFTER):
                assert client.call("POST", "/cpu", json={"hash": token, **_sample(i)}).status_code == 200
            read = client.call("GET", "/cpu", params={"hash": token})
        finally:
            client.close()
            status = server.stop()
    assert status == 0
    expected = [{"cpu": s["cpu"], "timestamp": s["time"]} for s in map(_sample, range(BEFORE + AFTER))]
    assert read.json() == {"payload": expected}
    assert set(client.statuses) == {200}
