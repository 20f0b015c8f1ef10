"""Hosts over HTTP (PROTOCOL.md part 3) through Falcon's test client over in-memory storage: sessions on a
host, GET /samples of a session or a host, GET /hosts, and part 1 left exactly as it was."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from falcon.testing import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes import FixedClock
from tests.unit.api_calls import UNKNOWN, register


def open_on(client: TestClient, call: str, host: Any, user: str = "alice") -> Any:
    return client.simulate_post(f"/{call}", json={"user": user, "passwd": "pw", "host": host})


def post(client: TestClient, token: str, moment: float, **metrics: float) -> None:
    result = client.simulate_post("/samples", json={"hash": token, "time": moment, "metrics": metrics})
    assert result.status_code == 200, result.text


def get(client: TestClient, path: str, **params: Any) -> Any:
    return client.simulate_get(path, params=params)


def test_a_session_opened_on_a_host_is_listed_with_it_and_others_with_null(client: TestClient) -> None:
    first = open_on(client, "register", "web-1").json["hash"]
    second = open_on(client, "login", None).json["hash"]
    third = client.simulate_post("/login", json={"user": "alice", "passwd": "pw"}).json["hash"]
    listed = get(client, "/sessions", hash=first).json["payload"]
    assert [(entry["session"], entry["host"]) for entry in listed] == [
        (third, None),
        (second, None),
        (first, "web-1"),
    ]


@pytest.mark.parametrize("host", [7, True, ["web"], {"name": "web"}, "", "x" * 129, "web\n1", "tab\there"])
@pytest.mark.parametrize("call", ["register", "login"])
def test_a_host_that_is_no_name_is_400_naming_host_and_opens_nothing(
    client: TestClient, call: str, host: Any
) -> None:
    if call == "login":
        register(client)
    result = open_on(client, call, host)
    assert (result.status_code, result.json["reason"]) == (400, "Bad arguments")
    assert result.json["detail"].startswith("host ")
    if call == "register":  # the user was not created: the name is still free
        assert open_on(client, "register", "web-1").status_code == 200


def test_a_host_name_of_128_characters_with_any_printable_text_is_accepted(client: TestClient) -> None:
    name = "Ünïcode host / ../etc " + "x" * 106
    token = open_on(client, "register", name).json["hash"]
    assert [entry["host"] for entry in get(client, "/hosts", hash=token).json["payload"]] == [name]


# Any text of 1..128 characters without control characters (categories Cc and Cs) is a host name.
HOST_NAMES = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=128)
_users = itertools.count()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=HOST_NAMES)
def test_any_host_name_is_data_listed_and_read_back_as_given(client: TestClient, name: str) -> None:
    token = open_on(client, "register", name, user=f"prop-{next(_users)}").json["hash"]
    post(client, token, 1.0, cpu=2.0)
    assert get(client, "/sessions", hash=token).json["payload"][0]["host"] == name
    assert [entry["host"] for entry in get(client, "/hosts", hash=token).json["payload"]] == [name]
    read = get(client, "/samples", hash=token, host=name, metric="cpu")
    assert read.json == {"payload": {"cpu": [{"timestamp": 1.0, "value": 2.0}]}}


def test_a_host_read_merges_every_session_of_the_host_by_time(client: TestClient) -> None:
    old = open_on(client, "register", "web-1").json["hash"]
    new = open_on(client, "login", "web-1").json["hash"]
    other = open_on(client, "login", "db-1").json["hash"]
    post(client, old, 10.0, cpu=1.0)
    post(client, old, 30.0, cpu=3.0)
    post(client, new, 20.0, cpu=2.0, mem=50.0)
    post(client, other, 15.0, cpu=99.0)
    result = get(client, "/samples", hash=other, host="web-1", metric=["cpu", "mem", "swap"])
    assert result.json == {
        "payload": {
            "cpu": [
                {"timestamp": 10.0, "value": 1.0},
                {"timestamp": 20.0, "value": 2.0},
                {"timestamp": 30.0, "value": 3.0},
            ],
            "mem": [{"timestamp": 20.0, "value": 50.0}],
            "swap": [],
        }
    }


def test_a_read_of_another_session_of_the_user_and_a_range(client: TestClient) -> None:
    first = register(client)
    post(client, first, 1.0, load1=0.5)
    post(client, first, 2.0, load1=1.5)
    post(client, first, 3.0, load1=2.5)
    second = open_on(client, "login", None).json["hash"]
    result = get(client, "/samples", hash=second, session=first, metric="load1", start_time=2, cur_time=3)
    assert result.json == {
        "payload": {"load1": [{"timestamp": 2.0, "value": 1.5}, {"timestamp": 3.0, "value": 2.5}]}
    }


def test_a_step_read_answers_buckets_per_metric(client: TestClient) -> None:
    token = open_on(client, "register", "web-1").json["hash"]
    for moment, value in [(0.0, 1.0), (5.0, 3.0), (12.0, 10.0)]:
        post(client, token, moment, net_rx=value, temp=-value)
    result = get(client, "/samples", hash=token, host="web-1", metric=["net_rx", "temp"], step=10)
    assert result.json["payload"] == {
        "net_rx": [
            {"timestamp": 0.0, "value": 2.0, "min": 1.0, "max": 3.0, "count": 2},
            {"timestamp": 10.0, "value": 10.0, "min": 10.0, "max": 10.0, "count": 1},
        ],
        "temp": [
            {"timestamp": 0.0, "value": -2.0, "min": -3.0, "max": -1.0, "count": 2},
            {"timestamp": 10.0, "value": -10.0, "min": -10.0, "max": -10.0, "count": 1},
        ],
    }


def test_a_csv_read_of_one_metric_has_its_name_in_the_header(client: TestClient) -> None:
    token = register(client)
    post(client, token, 1.5, mem=41.25)
    post(client, token, 2.5, mem=42.0)
    result = get(client, "/samples", hash=token, metric="mem", format="csv")
    assert result.status_code == 200 and result.headers["content-type"].startswith("text/csv")
    assert result.text == "mem,time\n41.25,1.5\n42.0,2.5\n"


def test_a_failed_csv_read_answers_its_error_as_json(client: TestClient) -> None:
    token = register(client)
    refused = get(client, "/samples", hash=UNKNOWN, metric="cpu", format="csv")
    missing = get(client, "/samples", hash=token, metric="cpu", format="csv", host="nowhere")
    assert [(r.status_code, r.headers["content-type"]) for r in (refused, missing)] == [
        (401, "application/json"),
        (404, "application/json"),
    ]


def test_a_metric_asked_twice_is_read_once(client: TestClient) -> None:
    token = register(client)
    post(client, token, 1.0, cpu=5.0)
    result = get(client, "/samples", hash=token, metric=["cpu", "mem", "cpu"])
    assert result.content == b'{"payload":{"cpu":[{"timestamp":1.0,"value":5.0}],"mem":[]}}'


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({}, "metric is missing"),
        ({"metric": ["cpu", "CPU"]}, "metric 'CPU' is not a metric name: it must match [a-z][a-z0-9_]{0,63}"),
        ({"metric": [f"m{i}" for i in range(17)]}, "metric may be given 1..16 times"),
        ({"metric": "cpu", "session": UNKNOWN, "host": "web-1"}, "session and host do not combine"),
        ({"metric": ["cpu", "mem"], "format": "csv"}, "format=csv takes one metric"),
        ({"metric": "cpu", "format": "csv", "step": "10"}, "step and format=csv do not combine"),
        ({"metric": "cpu", "step": "0"}, "step must be"),
        ({"metric": "cpu", "start_time": "2", "cur_time": "1"}, "start_time must not be after cur_time"),
        ({"metric": "cpu", "host": "x" * 129}, "host must be"),
        ({"metric": "cpu", "session": "not-a-uuid"}, "session hash must be a UUID"),
    ],
)
def test_a_bad_read_is_400_naming_the_parameter(
    client: TestClient, params: dict[str, Any], detail: str
) -> None:
    token = register(client)
    result = get(client, "/samples", hash=token, **params)
    assert (result.status_code, result.json["reason"]) == (400, "Bad arguments")
    assert result.json["detail"].startswith(detail)


@pytest.mark.parametrize("path", ["/samples", "/hosts"])
def test_a_read_with_an_unknown_hash_is_401(client: TestClient, path: str) -> None:
    result = get(client, path, hash=UNKNOWN, metric="cpu")
    assert (result.status_code, result.json) == (
        401,
        {"reason": "Not authorized user try to get data, please login"},
    )


def test_another_users_host_and_session_answer_exactly_like_missing_ones(client: TestClient) -> None:
    alices = open_on(client, "register", "web-1", user="alice").json["hash"]
    post(client, alices, 1.0, cpu=1.0)
    bobs = register(client, "bob")
    hosts = [get(client, "/samples", hash=bobs, metric="cpu", host=name) for name in ("web-1", "nowhere")]
    assert [(r.status_code, r.content) for r in hosts] == [(404, b'{"reason":"No such host"}')] * 2
    sessions = [get(client, "/samples", hash=bobs, metric="cpu", session=s) for s in (alices, UNKNOWN)]
    assert [(r.status_code, r.content) for r in sessions] == [(404, b'{"reason":"No such session"}')] * 2
    assert get(client, "/hosts", hash=bobs).json == {"payload": []}


def test_hosts_are_listed_by_name_with_their_sessions_times_and_latest_values(client: TestClient) -> None:
    web = open_on(client, "register", "web-2").json["hash"]
    again = open_on(client, "login", "web-2").json["hash"]
    open_on(client, "login", "db")
    open_on(client, "login", None)
    post(client, web, 50.0, cpu=10.0, mem=20.0)
    post(client, web, 40.0, cpu=99.0)  # older: not the latest
    post(client, again, 60.0, cpu=30.0)
    assert get(client, "/hosts", hash=web).json == {
        "payload": [
            {"host": "db", "sessions": 1, "first": None, "last": None, "seen": None, "latest": {}},
            {
                "host": "web-2",
                "sessions": 2,
                "first": 40.0,
                "last": 60.0,
                "seen": FixedClock().now,
                "latest": {"cpu": 30.0, "mem": 20.0},
            },
        ]
    }


def test_part_1_answers_are_byte_for_byte_those_of_before(client: TestClient) -> None:
    token = register(client)
    posted = client.simulate_post("/cpu", json={"hash": token, "cpu": 12.5, "time": 1.25})
    assert posted.content == (b'{"payload":{"cpu":12.5,"hash":"' + token.encode() + b'","time":1.25}}')
    post(client, token, 2.5, cpu=3.0, mem=4.0)
    assert get(client, "/cpu", hash=token).content == (
        b'{"payload":[{"cpu":12.5,"timestamp":1.25},{"cpu":3.0,"timestamp":2.5}]}'
    )
    assert get(client, "/cpu", hash=token, format="csv").text == "cpu,time\n12.5,1.25\n3.0,2.5\n"
