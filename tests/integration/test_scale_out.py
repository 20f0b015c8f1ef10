"""Two `perfmon serve --storage db` processes on one database behave as one server: a session opened on
either works on both, samples posted to either are read the same from both, and a name registered
concurrently through both is taken exactly once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.postgres_server import migrated_database
from tests.servers import start_server_process

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ALREADY_REGISTERED = (400, {"reason": "User is already registered", "detail": "user names a registered user"})


@pytest.fixture(scope="module")
def two_servers(postgres_server_url: str) -> Iterator[tuple[str, str]]:
    """The URLs of two server processes on one migrated database of their own, dropped at the end."""
    with migrated_database(postgres_server_url) as url:
        flags = ("--storage", "db", "--database-url", url)
        first = start_server_process(*flags)
        try:
            second = start_server_process(*flags)
            try:
                yield first.url, second.url
            finally:
                assert second.stop() == 0
        finally:
            assert first.stop() == 0


def test_a_session_from_either_process_works_on_both(two_servers: tuple[str, str]) -> None:
    a, b = two_servers
    registered = requests.post(f"{a}/register", json={"user": "both", "passwd": "pw"}, timeout=10)
    assert registered.status_code == 200
    login = requests.post(f"{b}/login", json={"user": "both", "passwd": "pw"}, timeout=10)
    assert login.status_code == 200
    token = login.json()["hash"]

    start = 1_700_000_000.0
    for i in range(20):
        sample = {"hash": token, "cpu": i * 1.5, "time": start + i}
        answer = requests.post(f"{(a, b)[i % 2]}/cpu", json=sample, timeout=10)
        assert (answer.status_code, answer.json()) == (200, {"payload": sample})

    expected = {"payload": [{"cpu": i * 1.5, "timestamp": start + i} for i in range(20)]}
    reads = [requests.get(f"{server}/cpu", params={"hash": token}, timeout=10) for server in (a, b)]
    assert [(read.status_code, read.json()) for read in reads] == [(200, expected)] * 2
    assert reads[0].content == reads[1].content
    # Samples belong to the session that posted them: the session of the registration has none, on either.
    first_session = registered.json()["hash"]
    for server in (a, b):
        read = requests.get(f"{server}/cpu", params={"hash": first_session}, timeout=10)
        assert read.json() == {"payload": []}


def test_one_name_registered_ten_times_through_both_processes_is_taken_once(
    two_servers: tuple[str, str],
) -> None:
    barrier = threading.Barrier(10)
    body = {"user": "contested", "passwd": "pw"}

    def register(server: str) -> tuple[int, dict[str, object]]:
        with requests.Session() as http:
            # Connect first, so that the barrier releases requests rather than TCP handshakes.
            assert http.get(f"{server}/healthz", timeout=10).status_code == 200
            barrier.wait(timeout=10)
            answer = http.post(f"{server}/register", json=body, timeout=10)
            return answer.status_code, answer.json()

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(register, [two_servers[i % 2] for i in range(10)]))

    winners = [answer for answer in answers if answer[0] == 200]
    assert len(winners) == 1, answers
    assert [answer for answer in answers if answer[0] != 200] == [ALREADY_REGISTERED] * 9
    # The winner's session works on both processes.
    token = winners[0][1]["hash"]
    for server in two_servers:
        read = requests.get(f"{server}/cpu", params={"hash": token}, timeout=10)
        assert (read.status_code, read.json()) == (200, {"payload": []})
