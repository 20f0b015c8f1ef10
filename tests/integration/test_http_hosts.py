"""Every row of PROTOCOL.md part 3 (hosts and metrics) over real HTTP to a waitress server, in both
storage modes: sessions on a host, POST /samples, GET /samples of a session or a host, GET /hosts,
GET /sessions' host, and `cpu` shared with part 1's calls."""

from __future__ import annotations

import time
import uuid
from typing import Any

import requests

from tests.integration.api_calls import UNKNOWN, open_account, read_cpu

TIMEOUT = 10


def open_session(url: str, call: str, user: str, host: Any) -> requests.Response:
    return requests.post(f"{url}/{call}", json={"user": user, "passwd": "pw", "host": host}, timeout=TIMEOUT)


def post(url: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{url}/samples", json=body, timeout=TIMEOUT)


def read(url: str, token: str, **params: Any) -> requests.Response:
    return requests.get(f"{url}/samples", params={"hash": token, **params}, timeout=60)


def hosts(url: str, token: str) -> requests.Response:
    return requests.get(f"{url}/hosts", params={"hash": token}, timeout=TIMEOUT)


def fresh_name() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def test_register_and_login_open_sessions_on_a_host_listed_in_get_sessions(server_url: str) -> None:
    name = fresh_name()
    first = open_session(server_url, "register", name, "web-1").json()["hash"]
    second = open_session(server_url, "login", name, None).json()["hash"]
    third = open_session(server_url, "login", name, "web-1").json()["hash"]
    listed = requests.get(f"{server_url}/sessions", params={"hash": first}, timeout=TIMEOUT).json()["payload"]
    assert [(entry["session"], entry["host"]) for entry in listed] == [
        (third, "web-1"),
        (second, None),
        (first, "web-1"),
    ]


def test_a_bad_host_is_400_naming_host_on_register_and_login(server_url: str) -> None:
    name = fresh_name()
    for host in (5, "", "a\x00b", "x" * 129):
        answer = open_session(server_url, "register", name, host)
        assert (answer.status_code, answer.json()["reason"]) == (400, "Bad arguments")
        assert answer.json()["detail"].startswith("host ")
    assert open_session(server_url, "register", name, "web-1").status_code == 200
    answer = open_session(server_url, "login", name, ["web-1"])
    assert (answer.status_code, answer.json()["detail"]) == (400, "host must be a string or null")


def test_post_samples_single_and_batch_read_back_per_metric(server_url: str) -> None:
    _, token = open_account(server_url)
    single = post(server_url, {"hash": token, "time": 100.0, "metrics": {"cpu": 12.5, "mem": 41.0}})
    assert (single.status_code, single.json()) == (200, {"stored": 1})
    batch = [{"time": 101.0 + i, "metrics": {"mem": 40.0 + i, "temp": -1.5 * i}} for i in range(3)]
    assert post(server_url, {"hash": token, "samples": batch}).json() == {"stored": 3}
    answer = read(server_url, token, metric=["mem", "temp", "swap"])
    assert answer.json() == {
        "payload": {
            "mem": [
                {"timestamp": moment, "value": value}
                for moment, value in ((100.0, 41.0), (101.0, 40.0), (102.0, 41.0), (103.0, 42.0))
            ],
            "temp": [{"timestamp": 101.0 + i, "value": -1.5 * i} for i in range(3)],
            "swap": [],
        }
    }


def test_a_bad_batch_names_the_first_bad_sample_or_metric_and_stores_nothing(server_url: str) -> None:
    _, token = open_account(server_url)
    batch = [{"time": 1.0, "metrics": {"cpu": 1.0}}] * 3 + [{"time": 2.0, "metrics": {"mem": -1}}]
    answer = post(server_url, {"hash": token, "samples": batch})
    assert (answer.status_code, answer.json()) == (
        400,
        {
            "reason": "Bad arguments: samples[3].metrics.mem must be a finite number >= 0",
            "detail": "samples[3].metrics.mem must be a finite number >= 0",
        },
    )
    single = post(server_url, {"hash": token, "time": 1.0, "metrics": {"cpu": True}})
    assert single.json() == {"reason": "Bad arguments", "detail": "metrics.cpu must be a finite number"}
    assert read(server_url, token, metric="cpu").json() == {"payload": {"cpu": []}}


def test_a_257th_metric_of_a_session_is_400_and_stores_nothing(server_url: str) -> None:
    _, token = open_account(server_url)
    batch = [{"time": 1.0, "metrics": {f"m{64 * s + i}": 1.0 for i in range(64)}} for s in range(4)]
    assert post(server_url, {"hash": token, "samples": batch}).json() == {"stored": 4}
    answer = post(server_url, {"hash": token, "time": 2.0, "metrics": {"m0": 2.0, "one_more": 1.0}})
    assert (answer.status_code, answer.json()["reason"]) == (400, "Bad arguments")
    assert read(server_url, token, metric="m0").json() == {
        "payload": {"m0": [{"timestamp": 1.0, "value": 1.0}]}
    }


def test_post_and_get_samples_with_an_unknown_hash_are_401(server_url: str) -> None:
    posted = post(server_url, {"hash": UNKNOWN, "time": 1.0, "metrics": {"cpu": 1.0}})
    assert (posted.status_code, posted.json()) == (
        401,
        {"reason": "Not authorized user try to post data, please login"},
    )
    for answer in (read(server_url, UNKNOWN, metric="cpu"), hosts(server_url, UNKNOWN)):
        assert (answer.status_code, answer.json()) == (
            401,
            {"reason": "Not authorized user try to get data, please login"},
        )


def test_cpu_is_one_series_whichever_call_wrote_it(server_url: str) -> None:
    _, token = open_account(server_url)
    requests.post(f"{server_url}/cpu", json={"hash": token, "cpu": 7.5, "time": 1.0}, timeout=TIMEOUT)
    post(server_url, {"hash": token, "time": 2.0, "metrics": {"cpu": 12.5, "mem": 3.0}})
    assert read_cpu(server_url, token).content == (
        b'{"payload":[{"cpu":7.5,"timestamp":1.0},{"cpu":12.5,"timestamp":2.0}]}'
    )
    assert read(server_url, token, metric="cpu").json()["payload"]["cpu"] == [
        {"timestamp": 1.0, "value": 7.5},
        {"timestamp": 2.0, "value": 12.5},
    ]


def test_a_host_read_merges_its_sessions_with_step_range_and_csv(server_url: str) -> None:
    name = fresh_name()
    old = open_session(server_url, "register", name, "web-1").json()["hash"]
    post(server_url, {"hash": old, "samples": [{"time": t, "metrics": {"mem": t}} for t in (10.0, 30.0)]})
    new = open_session(server_url, "login", name, "web-1").json()["hash"]
    post(server_url, {"hash": new, "time": 20.0, "metrics": {"mem": 20.0}})
    other = open_session(server_url, "login", name, "db-1").json()["hash"]
    post(server_url, {"hash": other, "time": 15.0, "metrics": {"mem": 99.0}})
    merged = read(server_url, other, host="web-1", metric="mem").json()["payload"]["mem"]
    assert merged == [{"timestamp": t, "value": t} for t in (10.0, 20.0, 30.0)]
    ranged = read(server_url, other, host="web-1", metric="mem", start_time=15, cur_time=30)
    assert [point["timestamp"] for point in ranged.json()["payload"]["mem"]] == [20.0, 30.0]
    stepped = read(server_url, other, host="web-1", metric="mem", step=100).json()["payload"]["mem"]
    assert stepped == [{"timestamp": 0.0, "value": 20.0, "min": 10.0, "max": 30.0, "count": 3}]
    csv = read(server_url, other, host="web-1", metric="mem", format="csv")
    assert csv.headers["Content-Type"].startswith("text/csv")
    assert csv.text == "mem,time\n10.0,10.0\n20.0,20.0\n30.0,30.0\n"
    of_session = read(server_url, other, session=old, metric="mem").json()["payload"]["mem"]
    assert [point["timestamp"] for point in of_session] == [10.0, 30.0]


def test_bad_reads_are_400(server_url: str) -> None:
    _, token = open_account(server_url)
    for params in (
        {},
        {"metric": "Bad-Name"},
        {"metric": [f"m{i}" for i in range(17)]},
        {"metric": "cpu", "session": UNKNOWN, "host": "web-1"},
        {"metric": ["cpu", "mem"], "format": "csv"},
    ):
        answer = read(server_url, token, **params)
        assert (answer.status_code, answer.json()["reason"]) == (400, "Bad arguments"), params
        assert answer.json()["detail"]


def test_another_users_host_and_session_answer_exactly_like_missing_ones(server_url: str) -> None:
    alice = fresh_name()
    alices = open_session(server_url, "register", alice, "web-1").json()["hash"]
    post(server_url, {"hash": alices, "time": 1.0, "metrics": {"cpu": 1.0}})
    bobs = open_session(server_url, "register", fresh_name(), "web-2").json()["hash"]
    by_host = [read(server_url, bobs, metric="cpu", host=name) for name in ("web-1", "no-such-host")]
    assert [(a.status_code, a.content) for a in by_host] == [(404, b'{"reason":"No such host"}')] * 2
    by_session = [read(server_url, bobs, metric="cpu", session=s) for s in (alices, UNKNOWN)]
    assert [(a.status_code, a.content) for a in by_session] == [(404, b'{"reason":"No such session"}')] * 2


def test_get_hosts_lists_the_users_hosts_by_name_with_times_and_latest_values(server_url: str) -> None:
    name = fresh_name()
    web = open_session(server_url, "register", name, "web-1").json()["hash"]
    open_session(server_url, "login", name, "a-quiet-host")
    open_session(server_url, "login", name, None)
    again = open_session(server_url, "login", name, "web-1").json()["hash"]
    before = time.time()
    post(server_url, {"hash": web, "samples": [{"time": 50.0, "metrics": {"cpu": 10.0, "mem": 20.0}}]})
    post(server_url, {"hash": web, "time": 40.0, "metrics": {"cpu": 99.0}})
    post(server_url, {"hash": again, "time": 60.0, "metrics": {"cpu": 30.0}})
    after = time.time()
    listed = hosts(server_url, web).json()["payload"]
    assert listed[0] == {
        "host": "a-quiet-host",
        "sessions": 1,
        "first": None,
        "last": None,
        "seen": None,
        "latest": {},
    }
    web_1 = listed[1]
    assert before <= web_1.pop("seen") <= after
    assert web_1 == {
        "host": "web-1",
        "sessions": 2,
        "first": 40.0,
        "last": 60.0,
        "latest": {"cpu": 30.0, "mem": 20.0},
    }
    assert len(listed) == 2
    _, strangers = open_account(server_url)
    assert hosts(server_url, strangers).json() == {"payload": []}
