"""PROTOCOL.md part 1 and its limits, over real HTTP to a waitress server, in every storage mode."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

UNKNOWN = "3f1c1b7e-8a1d-4c55-9a7e-0d9f0b6f5a21"


def _is_bad_arguments(status: int, body: dict[str, str]) -> bool:
    """A protocol 400: the exact reason, and a detail saying which field broke which rule."""
    return status == 400 and body["reason"] == "Bad arguments" and bool(body.get("detail"))


def _name(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _register(url: str, user: str, passwd: str = "pw") -> str:
    answer = requests.post(f"{url}/register", json={"user": user, "passwd": passwd}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["hash"]


def test_the_original_client_flow_works_unchanged(server_url: str) -> None:
    user = _name()
    token = _register(server_url, user, "secret")
    start = 1_700_000_000.0
    for i in range(5):
        sample = {"hash": token, "cpu": 10.0 + i, "time": start + i}
        answer = requests.post(f"{server_url}/cpu", json=sample, timeout=10)
        assert answer.status_code == 200
        assert answer.json() == {"payload": {"cpu": 10.0 + i, "hash": token, "time": start + i}}
    read = requests.get(
        f"{server_url}/cpu", params={"hash": token, "start_time": start, "cur_time": start + 3}, timeout=10
    )
    assert read.status_code == 200
    assert read.json() == {"payload": [{"cpu": 10.0 + i, "timestamp": start + i} for i in range(4)]}
    login = requests.post(f"{server_url}/login", json={"user": user, "passwd": "secret"}, timeout=10)
    assert login.status_code == 200 and login.json()["hash"] != token
    again = requests.get(f"{server_url}/cpu", params={"user_hash": login.json()["hash"]}, timeout=10)
    assert again.json() == {"payload": []}


def test_protocol_failures_answer_their_reasons(server_url: str) -> None:
    user = _name()
    _register(server_url, user)
    cases = [
        (
            requests.post,
            "/register",
            {"json": {"user": user, "passwd": "x"}},
            400,
            "User is already registered",
        ),
        (requests.post, "/register", {"json": {"user": user}}, 400, "Bad arguments"),
        (
            requests.post,
            "/login",
            {"json": {"user": user, "passwd": "bad"}},
            401,
            "Wrong credentials or user is not registered",
        ),
        (
            requests.post,
            "/login",
            {"json": {"user": _name(), "passwd": "pw"}},
            401,
            "Wrong credentials or user is not registered",
        ),
        (requests.post, "/login", {"json": ["user"]}, 400, "Bad arguments"),
        (
            requests.post,
            "/cpu",
            {"json": {"hash": UNKNOWN, "cpu": 1, "time": 1}},
            401,
            "Not authorized user try to post data, please login",
        ),
        (requests.post, "/cpu", {"json": {"hash": "zzz", "cpu": 1, "time": 1}}, 400, "Bad arguments"),
        (
            requests.get,
            "/cpu",
            {"params": {"hash": UNKNOWN}},
            401,
            "Not authorized user try to get data, please login",
        ),
        (requests.get, "/cpu", {"params": {"hash": UNKNOWN, "start_time": "x"}}, 400, "Bad arguments"),
        (
            requests.get,
            "/cpu",
            {"params": {"hash": UNKNOWN, "start_time": 2, "cur_time": 1}},
            400,
            "Bad arguments",
        ),
        (requests.get, "/cpu", {}, 400, "Bad arguments"),
    ]
    for send, path, options, status, reason in cases:
        answer = send(f"{server_url}{path}", timeout=10, **options)
        assert (answer.status_code, answer.json()["reason"]) == (status, reason), (path, options)
        # Every 400 says which field broke which rule; other errors need no detail.
        assert ("detail" in answer.json()) == (status == 400), (path, options)
        assert answer.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b'"x"',
        b"null",
        b'{"hash": "%s", "cpu": NaN, "time": 1}',
        b'{"hash": "%s", "cpu": true, "time": 1}',
        b'{"hash": "%s", "cpu": "5", "time": 1}',
        b'{"hash": "%s", "cpu": 1, "time": 1e11}',
        b"\xff\xfe",
    ],
)
def test_malformed_posts_are_400_and_store_nothing(server_url: str, body: bytes) -> None:
    token = _register(server_url, _name())
    payload = body.replace(b"%s", token.encode())
    answer = requests.post(
        f"{server_url}/cpu", data=payload, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert _is_bad_arguments(answer.status_code, answer.json())
    assert requests.get(f"{server_url}/cpu", params={"hash": token}, timeout=10).json() == {"payload": []}


@pytest.mark.parametrize(
    ("path", "body", "detail"),
    [
        ("/register", {"user": "someone"}, "passwd is missing"),
        ("/login", {"user": 7, "passwd": "pw"}, "user must be a string"),
        ("/register", {"user": "x" * 129, "passwd": "pw"}, "user name must have 1..128 characters"),
        ("/cpu", {"hash": "%s", "cpu": "5", "time": 1}, "cpu must be a number"),
        ("/cpu", {"hash": "%s", "cpu": 1}, "time is missing"),
        ("/cpu", {"hash": "%s", "cpu": -1, "time": 1}, "cpu must be a finite number >= 0"),
        ("/cpu", {"hash": "not-a-uuid", "cpu": 1, "time": 1}, "session hash must be a UUID"),
        ("/cpu", [1], "the body must be a JSON object"),
        (
            "/cpu",
            {"hash": "%s", "samples": [{"cpu": 1, "time": 1}, {"cpu": 1}]},
            "samples[1] time is missing",
        ),
    ],
)
def test_every_400_names_the_field_and_the_rule(
    server_url: str, path: str, body: object, detail: str
) -> None:
    token = _register(server_url, _name())
    payload = json.loads(json.dumps(body).replace("%s", token))
    answer = requests.post(f"{server_url}{path}", json=payload, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["detail"] == detail
    # The reason stays exactly what the protocol says; part 2's batch reason carries the detail too.
    assert answer.json()["reason"] in ("Bad arguments", f"Bad arguments: {detail}")


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({}, "hash or user_hash is missing"),
        ({"hash": "%s", "start_time": "soon"}, "start_time must be a number"),
        ({"hash": "%s", "start_time": 2, "cur_time": 1}, "start_time must not be after cur_time"),
        ({"hash": "%s", "format": "xml"}, "format must be one of json, csv"),
        (
            {"hash": "%s", "step": "0"},
            "step must be a finite number of seconds > 0 (at least about 5.6e-298)",
        ),
    ],
)
def test_every_400_of_a_read_names_the_parameter(
    server_url: str, params: dict[str, object], detail: str
) -> None:
    token = _register(server_url, _name())
    query = {name: token if value == "%s" else value for name, value in params.items()}
    answer = requests.get(f"{server_url}/cpu", params=query, timeout=10)
    assert (answer.status_code, answer.json()) == (400, {"reason": "Bad arguments", "detail": detail})


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b\\c", "..", "com,ma", "ü" * 128, "😀" * 128, "CON"])
def test_names_that_look_like_paths_are_just_names(server_url: str, name: str) -> None:
    unique = name[:-9] + uuid.uuid4().hex[:9] if len(name) > 100 else name + _name("")
    _register(server_url, unique, "pw")
    login = requests.post(f"{server_url}/login", json={"user": unique, "passwd": "pw"}, timeout=10)
    assert login.status_code == 200


def test_sixteen_threads_of_fifty_posts_store_exactly_eight_hundred(server_url: str) -> None:
    token = _register(server_url, _name())

    def post_fifty(thread_index: int) -> list[int]:
        with requests.Session() as http:
            return [
                http.post(
                    f"{server_url}/cpu",
                    json={"hash": token, "cpu": float(thread_index), "time": float(i)},
                    timeout=30,
                ).status_code
                for i in range(50)
            ]

    with ThreadPoolExecutor(16) as pool:
        statuses = [status for batch in pool.map(post_fifty, range(16)) for status in batch]
    assert statuses == [200] * 800
    payload = requests.get(f"{server_url}/cpu", params={"hash": token}, timeout=30).json()["payload"]
    assert sorted((s["cpu"], s["timestamp"]) for s in payload) == sorted(
        (float(t), float(i)) for t in range(16) for i in range(50)
    )


def test_ten_concurrent_registrations_of_one_name_let_exactly_one_win(server_url: str) -> None:
    name, barrier = _name("racer"), threading.Barrier(10)

    def register(_: int) -> int:
        barrier.wait()
        return requests.post(
            f"{server_url}/register", json={"user": name, "passwd": "pw"}, timeout=30
        ).status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(register, range(10)))
    assert sorted(statuses) == [200] + [400] * 9


def test_body_over_the_limit_is_413_json_and_stores_nothing(server_url: str) -> None:
    token = _register(server_url, _name())
    # Both over the default limit of 1 MiB. The batch is 10,000 valid samples spread out by indentation,
    # so that only its size refuses it.
    batch = {"hash": token, "samples": [{"cpu": 1.0, "time": 1.0}] * 10_000}
    bodies = {
        "/register": json.dumps({"user": "u" * (2 * 1024 * 1024), "passwd": "pw"}),
        "/cpu": json.dumps(batch, indent=20),
    }
    assert all(len(body) > 1024 * 1024 for body in bodies.values())
    for path, body in bodies.items():
        answer = requests.post(
            f"{server_url}{path}",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert (answer.status_code, answer.json()) == (413, {"reason": "Request body too large"})
    assert requests.get(f"{server_url}/cpu", params={"hash": token}, timeout=10).json() == {"payload": []}


def test_oversized_body_is_refused_from_its_headers_without_being_read(server_url: str) -> None:
    host, port = server_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"POST /cpu HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 104857600\r\n\r\n"
        )
        answer = b""
        while chunk := connection.recv(4096):  # the server closes after answering
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413") and answer.endswith(b'{"reason": "Request body too large"}')


def test_unknown_paths_and_methods_answer_json(server_url: str) -> None:
    missing = requests.get(f"{server_url}/nothing-here", timeout=10)
    assert missing.status_code == 404 and "reason" in missing.json()
    wrong = requests.put(f"{server_url}/register", json={}, timeout=10)
    assert wrong.status_code == 405 and "reason" in wrong.json()


def test_health_and_readiness_report_the_storage(server_url: str, storage_kind: str) -> None:
    assert requests.get(f"{server_url}/healthz", timeout=10).json() == {"status": "ok"}
    assert requests.get(f"{server_url}/readyz", timeout=10).json() == {
        "status": "ok",
        "storage": storage_kind,
    }


def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_413(server_url: str) -> None:
    # PROTOCOL.md, limits: only a body *larger* than the limit (default 1 MiB) is 413. A valid sample padded
    # with spaces (JSON whitespace) to exactly 1 MiB is stored; one byte more is refused, nothing stored.
    # (With Content-Length; a chunked body's limit counts waitress's chunk framing too.)
    token = _register(server_url, _name())
    limit = 1024 * 1024

    def post(size: int, moment: float) -> requests.Response:
        body = json.dumps({"hash": token, "time": moment, "metrics": {"cpu": 1.0}}).encode()
        return requests.post(
            f"{server_url}/samples",
            data=body + b" " * (size - len(body)),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )

    exact = post(limit, 1.0)
    assert (exact.status_code, exact.json()) == (200, {"stored": 1})
    over = post(limit + 1, 2.0)
    assert (over.status_code, over.json()) == (413, {"reason": "Request body too large"})
    stored = requests.get(f"{server_url}/samples", params={"hash": token, "metric": "cpu"}, timeout=10)
    assert stored.json() == {"payload": {"cpu": [{"timestamp": 1.0, "value": 1.0}]}}
