"""`perfmon serve --workers 2`, in both storage modes: one port served by two worker processes under one
parent. Requests reach both workers and every acknowledged sample is stored once; what the two-process
tests promise (test_scale_out.py, test_file_scale_out.py, test_http_access.py) holds between the two
workers; a worker killed with -9 is replaced without losing an acknowledged sample; SIGTERM drains the
requests in flight, in one process as in several; the background passes run in worker 0 alone.

Which worker serves which connection is read from the access log: with --workers every log line carries
its process's pid, and a test's requests are the only ones, so the newest access line is its request's.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from perfmon.entrypoints.workers import CRASH_LIMIT
from tests.integration.api_calls import open_account
from tests.integration.test_http_access import answer, refused_within_a_second
from tests.servers import ServerProcess, run_perfmon, start_server_process

pytestmark = pytest.mark.slow

TIMEOUT = 10
START = 1_700_000_000.0
# PROTOCOL.md part 4: a closed session is refused in every process within a second.
CLOSED_EVERYWHERE_WITHIN = 1.0
POST_401 = (401, {"reason": "Not authorized user try to post data, please login"})
GET_401 = (401, {"reason": "Not authorized user try to get data, please login"})
ALREADY_REGISTERED = (400, {"reason": "User is already registered", "detail": "user names a registered user"})

_SERVING = re.compile(r"\[(\d+)\] INFO perfmon: worker (\d+) \(pid \1\) serving")
_PID = re.compile(r"^\S+ \S+ \[(\d+)\] ")


# --- reading the server's log ---------------------------------------------------------------------------


def _pid_of(line: str) -> int:
    match = _PID.match(line)
    assert match, f"a line without the pid of its process: {line!r}"
    return int(match.group(1))


def _lines(server: ServerProcess, text: str) -> list[str]:
    return [line for line in list(server.log) if text in line]


def _wait_for(condition: Callable[[], Any], what: str, within: float = 20) -> Any:
    deadline = time.monotonic() + within
    while not (found := condition()):
        assert time.monotonic() < deadline, f"no {what} after {within} s"
        time.sleep(0.02)
    return found


def _workers(server: ServerProcess) -> dict[int, int]:
    """The pid of the newest worker of each slot that said it serves."""
    slots: dict[int, int] = {}
    for line in list(server.log):
        if match := _SERVING.search(line):
            slots[int(match.group(2))] = int(match.group(1))
    return slots


def workers_serving(server: ServerProcess, count: int = 2) -> dict[int, int]:
    """Wait until `count` workers serve; their pids by slot."""
    return _wait_for(lambda: (slots := _workers(server)) and len(slots) == count and slots, "workers serving")


def replacement(server: ServerProcess, slot: int, dead: int) -> int:
    """Wait for the worker started in place of `dead` in `slot`; its pid."""
    return _wait_for(lambda: (pid := _workers(server).get(slot)) != dead and pid, f"new worker {slot}")


def is_running(pid: int) -> bool:
    """True while a perfmon process has this pid (a reused pid is some other program's)."""
    try:
        return b"perfmon" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False


def worker_of(server: ServerProcess, http: requests.Session) -> int:
    """The pid of the worker serving this keep-alive connection (the test's requests are the only ones)."""
    before = len(_access_lines(server))
    assert http.get(f"{server.url}/healthz", timeout=TIMEOUT).status_code == 200
    logged = _wait_for(lambda: len(lines := _access_lines(server)) > before and lines, "access line")
    return _pid_of(logged[-1])


def _access_lines(server: ServerProcess) -> list[str]:
    return _lines(server, " perfmon.access: ")


def connections_to_each_worker(server: ServerProcess, pids: dict[int, int]) -> dict[int, requests.Session]:
    """A keep-alive connection to each worker, by pid: connections are opened until every worker got one
    (the kernel gives each to whichever worker accepts first)."""
    found: dict[int, requests.Session] = {}
    for _ in range(60):
        http = requests.Session()
        pid = worker_of(server, http)
        if pid in found:
            http.close()
        else:
            found[pid] = http
        if set(found) == set(pids.values()):
            return found
    raise AssertionError(f"60 connections reached only the workers {sorted(found)} of {pids}")


@contextmanager
def two_workers(*flags: str) -> Iterator[tuple[ServerProcess, dict[int, int]]]:
    """A `perfmon serve --workers 2 --access-log` process and its workers' pids by slot; stopped with
    SIGTERM at the end, which must exit 0 and leave no worker."""
    server = start_server_process(*flags, "--workers", "2", "--access-log")
    pids: dict[int, int] = {}
    try:
        pids = workers_serving(server)
        yield server, pids
    finally:
        assert server.stop() == 0, "".join(server.log)
        assert not [pid for pid in _workers(server).values() if is_running(pid)]


def stored_times(url: str, token: str) -> list[float]:
    """The times of the session's samples, read through a new connection, in the order answered."""
    read = requests.get(f"{url}/cpu", params={"hash": token}, timeout=60)
    assert read.status_code == 200, read.text
    return [sample["timestamp"] for sample in read.json()["payload"]]


def batch_at(times: list[float]) -> list[dict[str, float]]:
    return [{"cpu": moment % 100, "time": moment} for moment in times]


# --- many connections, two workers ----------------------------------------------------------------------

CONNECTIONS = 24
SESSIONS = 12
ROUNDS = 15


def test_two_workers_serve_many_keep_alive_connections_and_store_each_acknowledged_sample_once(
    server_flags: list[str],
) -> None:
    with two_workers(*server_flags) as (server, pids):
        tokens = [open_account(server.url)[1] for _ in range(SESSIONS)]
        barrier = threading.Barrier(CONNECTIONS)
        marker = len(server.log)

        def post_through_one_connection(index: int) -> dict[str, list[float]]:
            acknowledged: dict[str, list[float]] = defaultdict(list)
            with requests.Session() as http:
                # Connect first, so that the connections are many at once, as a fleet's are.
                assert http.get(f"{server.url}/healthz", timeout=TIMEOUT).status_code == 200
                barrier.wait(timeout=TIMEOUT)
                for round_ in range(ROUNDS):
                    token = tokens[(index + round_) % SESSIONS]
                    times = [START + index * 10_000 + round_ * 10 + k for k in range(10)]
                    body = {"hash": token, "samples": batch_at(times)}
                    posted = http.post(f"{server.url}/cpu", json=body, timeout=30)
                    assert posted.status_code == 200, posted.text
                    acknowledged[token] += times
            return acknowledged

        with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:
            results = list(pool.map(post_through_one_connection, range(CONNECTIONS)))
        for token in tokens:
            expected = sorted(moment for result in results for moment in result.get(token, []))
            assert stored_times(server.url, token) == expected
    posts = Counter(_pid_of(line) for line in server.log[marker:] if " perfmon.access: POST /cpu 200" in line)
    assert set(posts) == set(pids.values()), posts
    assert sum(posts.values()) == CONNECTIONS * ROUNDS


# --- what two processes on one storage promise, between two workers ------------------------------------


def test_a_session_made_through_one_worker_is_used_through_the_other(server_flags: list[str]) -> None:
    with two_workers(*server_flags) as (server, pids):
        connections = list(connections_to_each_worker(server, pids).values())
        first, second = connections
        registered = first.post(f"{server.url}/register", json={"user": "both", "passwd": "pw"}, timeout=10)
        login = second.post(f"{server.url}/login", json={"user": "both", "passwd": "pw"}, timeout=10)
        assert (registered.status_code, login.status_code) == (200, 200)
        token = login.json()["hash"]
        for i in range(20):
            sample = {"hash": token, "cpu": i * 1.5, "time": START + i}
            posted = (first, second)[i % 2].post(f"{server.url}/cpu", json=sample, timeout=10)
            assert answer(posted) == (200, {"payload": sample})
        expected = {"payload": [{"cpu": i * 1.5, "timestamp": START + i} for i in range(20)]}
        reads = [http.get(f"{server.url}/cpu", params={"hash": token}, timeout=10) for http in connections]
        assert [answer(read) for read in reads] == [(200, expected)] * 2
        for http in connections:
            http.close()


def test_one_name_registered_ten_times_at_once_through_two_workers_is_taken_once(
    server_flags: list[str],
) -> None:
    with two_workers(*server_flags) as (server, pids):
        barrier = threading.Barrier(10)

        def register(_: int) -> tuple[int, Any]:
            with requests.Session() as http:
                assert http.get(f"{server.url}/healthz", timeout=10).status_code == 200
                barrier.wait(timeout=10)
                body = {"user": "one", "passwd": "pw"}
                return answer(http.post(f"{server.url}/register", json=body, timeout=10))

        with ThreadPoolExecutor(max_workers=10) as pool:
            answers = list(pool.map(register, range(10)))
        winners = [reply for reply in answers if reply[0] == 200]
        assert len(winners) == 1, answers
        assert [reply for reply in answers if reply[0] != 200] == [ALREADY_REGISTERED] * 9
        token = winners[0][1]["hash"]
        for http in connections_to_each_worker(server, pids).values():
            read = http.get(f"{server.url}/cpu", params={"hash": token}, timeout=10)
            assert answer(read) == (200, {"payload": []})
            http.close()


def test_a_revocation_or_logout_through_one_worker_is_refused_by_the_other_within_a_second(
    server_flags: list[str],
) -> None:
    with two_workers(*server_flags) as (server, pids):
        url = server.url
        first, second = connections_to_each_worker(server, pids).values()
        name, owner = open_account(url)
        made = first.post(f"{url}/keys", json={"hash": owner, "scope": "ingest", "name": "agent"}, timeout=10)
        key = made.json()
        # Opened through either worker; the other one serves (and so caches) each below.
        agent = first.post(f"{url}/login", json={"key": key["key"], "host": "h"}, timeout=10).json()["hash"]
        leaving = second.post(f"{url}/login", json={"user": name, "passwd": "pw"}, timeout=10).json()["hash"]

        def post_cpu(http: requests.Session, token: str) -> requests.Response:
            return http.post(f"{url}/cpu", json={"hash": token, "cpu": 5.0, "time": START}, timeout=10)

        def list_sessions(http: requests.Session, token: str) -> requests.Response:
            return http.get(f"{url}/sessions", params={"hash": token}, timeout=10)

        for http in (first, second):
            assert post_cpu(http, agent).status_code == 200
            assert list_sessions(http, leaving).status_code == 200

        assert first.delete(f"{url}/keys/{key['id']}", params={"hash": owner}, timeout=10).status_code == 200
        refused_within_a_second(lambda: post_cpu(second, agent), POST_401)
        assert first.post(f"{url}/logout", json={"hash": leaving}, timeout=10).status_code == 200
        refused_within_a_second(lambda: list_sessions(second, leaving), GET_401)
        # The user's other session is untouched, in both.
        assert [post_cpu(http, owner).status_code for http in (first, second)] == [200, 200]
        for http in (first, second):
            http.close()


# Two days ago and before, at noon UTC: closed days, which worker 0's passes compact.
CLOSED_DAYS_START = (time.time() // 86400 - 3) * 86400 + 43200.0


def test_samples_posted_through_both_workers_are_rolled_up_and_compacted_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    flags = ("--storage", "file", "--data-dir", str(data_dir), "--maintenance-interval", "1")
    with two_workers(*flags) as (server, pids):
        connections = list(connections_to_each_worker(server, pids).values())
        token = open_account(server.url)[1]
        for i in range(40):
            times = [CLOSED_DAYS_START + 3600 * i + j for j in range(30)]
            body = {"hash": token, "samples": batch_at(times)}
            assert connections[i % 2].post(f"{server.url}/cpu", json=body, timeout=10).status_code == 200
        _wait_for(lambda: list((data_dir / "sessions" / token / "cpu").glob("*.csv.xz")), "compacted day", 30)
        raw = [http.get(f"{server.url}/cpu", params={"hash": token}, timeout=10) for http in connections]
        params = {"hash": token, "step": 3600}
        hourly = [http.get(f"{server.url}/cpu", params=params, timeout=10) for http in connections]
        for http in connections:
            http.close()
    assert raw[0].content == raw[1].content and len(raw[0].json()["payload"]) == 1200
    assert hourly[0].content == hourly[1].content
    assert [bucket["count"] for bucket in hourly[0].json()["payload"]] == [30] * 40


# --- a worker killed, and one that keeps dying ---------------------------------------------------------


def test_a_worker_killed_during_ingest_is_replaced_and_no_acknowledged_sample_is_lost(
    server_flags: list[str],
) -> None:
    with two_workers(*server_flags) as (server, pids):
        tokens = [open_account(server.url)[1] for _ in range(4)]
        stop = threading.Event()
        answered_after_restart = threading.Event()
        restarted = threading.Event()

        def post_until_stopped(index: int) -> tuple[dict[str, list[float]], Counter[float]]:
            acknowledged: dict[str, list[float]] = defaultdict(list)
            sent: Counter[float] = Counter()
            http = requests.Session()
            for n in range(1_000_000):
                if stop.is_set():
                    break
                token = tokens[n % len(tokens)]
                times = [START + index * 1_000_000 + n * 10 + k for k in range(10)]
                sent.update(times)
                try:
                    posted = http.post(
                        f"{server.url}/cpu", json={"hash": token, "samples": batch_at(times)}, timeout=30
                    )
                # A connection of the killed worker, cut before or while it answered: a new one.
                except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                    http.close()
                    http = requests.Session()
                    continue
                assert posted.status_code == 200, posted.text
                acknowledged[token] += times
                if restarted.is_set():
                    answered_after_restart.set()
            http.close()
            return acknowledged, sent

        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(post_until_stopped, index) for index in range(8)]
            try:
                time.sleep(1)
                os.kill(pids[1], signal.SIGKILL)
                new_worker = replacement(server, 1, pids[1])
                restarted.set()
                assert answered_after_restart.wait(timeout=20), "nothing answered since the restart"
                time.sleep(1)
            finally:
                stop.set()
            results = [future.result(timeout=60) for future in futures]
        # The new worker serves too: a batch through a connection of its own.
        new_connection = connections_to_each_worker(server, {0: pids[0], 1: new_worker})[new_worker]
        late = [START - 100 + k for k in range(10)]
        body = {"hash": tokens[0], "samples": batch_at(late)}
        assert new_connection.post(f"{server.url}/cpu", json=body, timeout=10).status_code == 200
        new_connection.close()
        sent = sum((result[1] for result in results), Counter(late))
        for token in tokens:
            acknowledged = [moment for result in results for moment in result[0].get(token, [])]
            stored = Counter(stored_times(server.url, token))
            # Acknowledged: stored once. Sent to the killed worker unanswered: stored once or not at all.
            assert all(stored[moment] == 1 for moment in acknowledged)
            assert all(count == 1 and sent[moment] == 1 for moment, count in stored.items())
        assert all(stored_times(server.url, tokens[0])[k] == late[k] for k in range(10))
    warnings = _lines(server, f"worker 1 (pid {pids[1]}) was killed by signal 9 (SIGKILL); starting another")
    assert len(warnings) == 1 and " WARNING " in warnings[0]


def test_workers_that_keep_dying_stop_the_server_with_one_error_line(tmp_path: Path) -> None:
    server = start_server_process("--data-dir", str(tmp_path / "data"), "--workers", "2")
    try:
        pids = workers_serving(server)
        dying = pids[1]
        for kill in range(CRASH_LIMIT):
            os.kill(dying, signal.SIGKILL)
            if kill < CRASH_LIMIT - 1:
                dying = replacement(server, 1, dying)
        status = server.process.wait(timeout=40)
    finally:
        server.stop()
    assert status == 1
    time.sleep(0.2)  # the log's reader thread catches up
    errors = _lines(server, " ERROR ")
    assert len(errors) == 1 and "workers keep dying" in errors[0], errors
    assert not [pid for pid in _workers(server).values() if is_running(pid)]


def test_a_parent_killed_with_9_leaves_no_worker_serving(tmp_path: Path) -> None:
    server = start_server_process("--data-dir", str(tmp_path / "data"), "--workers", "2")
    try:
        pids = workers_serving(server)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        # Each worker is sent SIGTERM by the kernel when its parent dies (prctl), and drains.
        _wait_for(lambda: not [pid for pid in pids.values() if is_running(pid)], "end of the workers")
    finally:
        server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(_address(server.url), timeout=5)


# --- stopping -------------------------------------------------------------------------------------------


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _read_answer(sock: socket.socket) -> tuple[int, Any]:
    """The status and JSON body of one HTTP answer with a Content-Length."""
    received = b""
    while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < _length(received):
        chunk = sock.recv(65536)
        assert chunk, f"the connection was closed before the whole answer: {received!r}"
        received += chunk
    head, body = received.split(b"\r\n\r\n", 1)
    return int(head.split(b" ")[1]), json.loads(body)


def _length(received: bytes) -> int:
    head = received.split(b"\r\n\r\n", 1)[0].decode()
    return int(re.search(r"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_the_requests_in_flight_and_every_process_exits_0(
    server_flags: list[str], workers: int
) -> None:
    flags = (*server_flags, "--workers", str(workers), "--idle-timeout", "120")
    server = start_server_process(*flags)
    try:
        pids = workers_serving(server, workers) if workers > 1 else {}
        _, token = open_account(server.url)
        bodies = [
            json.dumps({"hash": token, "samples": batch_at([START + i * 10_000 + k for k in range(10_000)])})
            for i in range(3)
        ]
        idle = requests.Session()  # a keep-alive connection with nothing to do: not waited for
        assert idle.get(f"{server.url}/healthz", timeout=TIMEOUT).status_code == 200
        arriving = [socket.create_connection(_address(server.url), timeout=30) for _ in bodies]
        for sock, body in zip(arriving, bodies, strict=True):
            head = f"POST /cpu HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
            sock.sendall(f"{head}Content-Type: application/json\r\n\r\n{body[:1000]}".encode())
        time.sleep(0.5)  # the headers have reached the workers

        server.process.send_signal(signal.SIGTERM)
        _wait_for(lambda: len(_lines(server, "finishing the requests in flight")) == max(workers, 1), "drain")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(_address(server.url), timeout=5)
        for sock, body in zip(arriving, bodies, strict=True):
            sock.sendall(body[1000:].encode())
        answers = [_read_answer(sock)[0] for sock in arriving]
        status = server.process.wait(timeout=40)
    finally:
        server.stop()
    assert answers == [200] * len(bodies)
    assert status == 0
    assert not [pid for pid in pids.values() if is_running(pid)]
    assert " ERROR " not in "".join(server.log) and " WARNING " not in "".join(server.log)
    # What they acknowledged is stored: a new server on the storage reads it back.
    again = start_server_process(*server_flags)
    try:
        assert stored_times(again.url, token) == [
            START + i * 10_000 + k for i in range(3) for k in range(10_000)
        ]
    finally:
        assert again.stop() == 0


def test_only_worker_0_runs_the_background_passes_and_the_one_started_in_its_place_takes_over(
    server_flags: list[str],
) -> None:
    flags = (*server_flags, "--log-level", "DEBUG", "--maintenance-interval", "1")
    with two_workers(*flags) as (server, pids):

        def passes() -> Counter[int]:
            return Counter(_pid_of(line) for line in _lines(server, "maintenance pass done"))

        _wait_for(lambda: passes()[pids[0]] >= 3, "passes of worker 0")
        os.kill(pids[0], signal.SIGKILL)
        new_worker = replacement(server, 0, pids[0])
        _wait_for(lambda: passes()[new_worker] >= 3, "passes of the new worker 0")
    assert set(passes()) == {pids[0], new_worker}
    assert len(_lines(server, "it runs the background passes")) == 2


# --- start-up -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [("0", "workers must be 1..64 processes, not 0"), ("65", "not 65"), ("two", "--workers: invalid int")],
)
def test_serve_refuses_a_number_of_workers_it_cannot_run(value: str, message: str) -> None:
    result = run_perfmon("serve", "--port", "0", "--workers", value)
    assert result.returncode == 2
    assert message in result.stderr


def test_serve_with_workers_on_a_taken_port_says_so_in_one_line_and_starts_no_worker(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = run_perfmon(
            "serve", "--port", str(port), "--workers", "2", "--data-dir", str(tmp_path / "d")
        )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "in use" in errors[0], result.stderr
    assert "Traceback" not in result.stderr and "worker" not in result.stderr
