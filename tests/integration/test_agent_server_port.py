"""The agent's server port, one behaviour suite over every implementation of it: the fake the unit tests
use (tests/agent_fakes.py), and the HTTP client talking to a real perfmon server in each storage mode.

The expected texts are PROTOCOL.md's reasons as the port's errors carry them; the fake must match the
server here, or the unit tests built on it test an agent against a server that does not exist."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import pytest
import requests

from perfmon.agent.adapters.http_client import ServerClient
from perfmon.agent.model import Sample
from perfmon.agent.ports import (
    AlreadyRegistered,
    CredentialsRefused,
    Forbidden,
    KeyRefused,
    PerfmonServer,
    Rejected,
    ServerUnavailable,
    SessionExpired,
)
from tests.agent_fakes import FakePerfmon, FakeServer
from tests.servers import threaded_server

# A client of the port for a user, password and host; clients made by one Connect share one server.
Connect = Callable[..., PerfmonServer]
# What a user does on the dashboard's keys page (PROTOCOL.md part 4): make a key of a scope for a
# registered user and password, giving the key and a function that revokes it.
MakeKey = Callable[[str, str, str], tuple[str, Callable[[], None]]]
# A client of the port logging in with a key, on a host ("web-1" by default).
ConnectWithKey = Callable[..., PerfmonServer]

T0 = 1_700_000_000.0
UNKNOWN_SESSION = "00000000-0000-4000-8000-0000000000ff"
SMALL_BODY_BYTES = 2048  # the real server's body limit in the 413 case: about 40 samples of two metrics
FAKE_LARGEST_BATCH = 40  # the same limit, as the fake counts it
ALL = ("cpu", "mem", "temp")


@pytest.fixture(params=["fake", "file", pytest.param("db", marks=pytest.mark.postgres)])
def storage_kind(request: pytest.FixtureRequest) -> str:
    """Overrides conftest's: beside the server's storage modes, "fake" runs the suite on the fake alone."""
    return str(request.param)


@pytest.fixture
def fake_perfmon() -> FakePerfmon:
    return FakePerfmon()


@pytest.fixture
def connect(storage_kind: str, request: pytest.FixtureRequest) -> Connect:
    if storage_kind == "fake":
        perfmon = request.getfixturevalue("fake_perfmon")
        return lambda user, password, host="web-1": FakeServer(user, password, perfmon, host)
    url = request.getfixturevalue("server_url")
    return lambda user, password, host="web-1": ServerClient(url, user, password, host, timeout=5)


@pytest.fixture
def connect_with_key(storage_kind: str, request: pytest.FixtureRequest) -> ConnectWithKey:
    if storage_kind == "fake":
        perfmon = request.getfixturevalue("fake_perfmon")
        return lambda key, host="web-1": FakeServer.with_key(key, perfmon, host)
    url = request.getfixturevalue("server_url")
    return lambda key, host="web-1": ServerClient.with_key(url, key, host, timeout=5)


@pytest.fixture
def make_key(storage_kind: str, request: pytest.FixtureRequest) -> MakeKey:
    """Keys made and revoked as the keys page does: on the fake's side, or over HTTP (POST /keys and
    DELETE /keys/{id} with a session opened with the password)."""
    if storage_kind == "fake":
        perfmon: FakePerfmon = request.getfixturevalue("fake_perfmon")

        def fake(user: str, password: str, scope: str) -> tuple[str, Callable[[], None]]:
            assert perfmon.passwords[user] == password
            key = perfmon.make_key(user, scope)
            return key, lambda: perfmon.revoke(key)

        return fake
    url = request.getfixturevalue("server_url")

    def over_http(user: str, password: str, scope: str) -> tuple[str, Callable[[], None]]:
        login = requests.post(f"{url}/login", json={"user": user, "passwd": password}, timeout=5)
        token = login.json()["hash"]
        made = requests.post(f"{url}/keys", json={"hash": token, "scope": scope, "name": "agent"}, timeout=5)
        assert made.status_code == 200, made.text

        def revoke() -> None:
            gone = requests.delete(f"{url}/keys/{made.json()['id']}", params={"hash": token}, timeout=5)
            assert gone.status_code == 200, gone.text

        return made.json()["key"], revoke

    return over_http


@pytest.fixture
def connect_small_body(storage_kind: str, request: pytest.FixtureRequest) -> Iterator[Connect]:
    """As connect, to a server whose body limit lets about FAKE_LARGEST_BATCH samples through."""
    if storage_kind == "fake":
        perfmon = FakePerfmon()

        def fake(user: str, password: str, host: str = "web-1") -> PerfmonServer:
            server = FakeServer(user, password, perfmon, host)
            server.largest_batch = FAKE_LARGEST_BATCH
            return server

        yield fake
        return
    settings = request.getfixturevalue("server_settings")
    with threaded_server(dataclasses.replace(settings, max_body_bytes=SMALL_BODY_BYTES)) as url:
        yield lambda user, password, host="web-1": ServerClient(url, user, password, host, timeout=5)


def _samples(*cpus: float, start: float = T0) -> list[Sample]:
    return [Sample({"cpu": cpu, "mem": 40.0 + n}, start + n) for n, cpu in enumerate(cpus)]


def _values(samples: list[Sample]) -> set[tuple[str, float, float]]:
    return {(name, s.taken_at, value) for s in samples for name, value in s.metrics.items()}


def test_registering_opens_a_session_and_registering_again_is_already_registered(connect: Connect) -> None:
    alice = connect("alice", "pw")

    token = alice.register()

    assert isinstance(token, str) and token
    with pytest.raises(AlreadyRegistered, match="^User is already registered$"):
        alice.register()


def test_a_name_the_server_does_not_accept_is_refused_as_bad_arguments(connect: Connect) -> None:
    with pytest.raises(CredentialsRefused, match=r"^registration refused: Bad arguments$"):
        connect("", "pw").register()
    with pytest.raises(CredentialsRefused, match=r"^log in refused: Bad arguments$"):
        connect("a\x00b", "pw").log_in()
    with pytest.raises(CredentialsRefused, match=r"^registration refused: Bad arguments$"):
        connect("alice", "pw", "web\n1").register()


def test_logging_in_opens_a_new_session_every_time(connect: Connect) -> None:
    alice = connect("alice", "pw")
    first = alice.register()

    second, third = alice.log_in(), alice.log_in()

    assert len({first, second, third}) == 3


def test_an_unknown_user_and_a_wrong_password_are_refused_alike(connect: Connect) -> None:
    connect("alice", "pw").register()

    for user, password in (("bob", "pw"), ("alice", "wrong")):
        with pytest.raises(CredentialsRefused) as refusal:
            connect(user, password).log_in()
        assert str(refusal.value) == "log in refused: Wrong credentials or user is not registered"


def test_the_hosts_history_reads_back_exactly_every_session_of_it_merged(connect: Connect) -> None:
    alice = connect("alice", "pw")
    first = alice.register()
    early = [Sample({"cpu": 0.1 + 0.2, "mem": 41.0, "temp": -3.25}, T0 + 0.123456789)]
    alice.post_samples(first, early)  # the single form
    late = _samples(10.0, 20.0, start=T0 + 10)
    second = alice.log_in()  # a restart: a new session on the same host
    alice.post_samples(second, late)

    assert alice.stored_values(second, ALL, T0, T0 + 11) == _values(early + late)
    assert alice.stored_values(first, ["mem"], T0 + 1, T0 + 10) == {("mem", T0 + 10, 40.0)}


def test_another_hosts_or_another_users_samples_are_not_the_hosts(connect: Connect) -> None:
    alice, alices_laptop = connect("alice", "pw", "web-1"), connect("alice", "pw", "laptop")
    bob = connect("bob", "pw", "web-1")
    token = alice.register()
    alice.post_samples(token, _samples(1.0))
    alices_laptop.post_samples(alices_laptop.log_in(), _samples(2.0, 3.0))
    bob.post_samples(bob.register(), _samples(4.0, 5.0))

    assert alice.stored_values(token, ALL, T0, T0 + 10) == _values(_samples(1.0))


def test_a_host_without_a_session_of_the_user_is_no_such_host(connect: Connect) -> None:
    token = connect("alice", "pw", "web-1").register()
    connect("bob", "pw", "web-2").register()

    with pytest.raises(ServerUnavailable) as missing:
        connect("alice", "pw", "web-2").stored_values(token, ["cpu"], T0, T0)

    assert str(missing.value) == "server answered 404: No such host"


def test_a_batch_with_a_bad_sample_is_rejected_naming_it_and_nothing_is_stored(connect: Connect) -> None:
    alice = connect("alice", "pw")
    token = alice.register()
    bad_cpu = [*_samples(1.0, 2.0), Sample({"mem": 1.0, "cpu": -1.0}, T0 + 2)]
    bad_time = [*_samples(1.0), Sample({"cpu": 2.0}, -1.0)]

    with pytest.raises(Rejected) as cpu_rejection:
        alice.post_samples(token, bad_cpu)
    with pytest.raises(Rejected) as time_rejection:
        alice.post_samples(token, bad_time)
    with pytest.raises(Rejected) as single_rejection:
        alice.post_samples(token, [Sample({"temp": 20.0, "swap": -0.5}, T0)])

    assert (cpu_rejection.value.status, cpu_rejection.value.sample_index) == (400, 2)
    assert cpu_rejection.value.reason == "Bad arguments: samples[2].metrics.cpu must be a finite number >= 0"
    assert (time_rejection.value.status, time_rejection.value.sample_index) == (400, 1)
    assert time_rejection.value.reason.startswith("Bad arguments: samples[1].time must be a finite number")
    assert (single_rejection.value.reason, single_rejection.value.sample_index) == ("Bad arguments", None)
    assert single_rejection.value.detail == "metrics.swap must be a finite number >= 0"
    assert alice.stored_values(token, ALL, 0, 1e11) == set()


def test_a_batch_over_ten_thousand_samples_is_rejected_without_an_index(connect: Connect) -> None:
    alice = connect("alice", "pw")
    token = alice.register()

    with pytest.raises(Rejected) as rejection:
        alice.post_samples(token, [Sample({"cpu": 1.0}, T0 + n) for n in range(10_001)])

    assert (rejection.value.status, rejection.value.sample_index) == (400, None)
    assert rejection.value.reason == "Bad arguments: samples must be a list of 1..10000 samples"


def test_a_batch_over_the_body_limit_is_rejected_as_too_large(connect_small_body: Connect) -> None:
    alice = connect_small_body("alice", "pw")
    token = alice.register()

    with pytest.raises(Rejected) as rejection:
        alice.post_samples(token, _samples(*range(500)))
    alice.post_samples(token, _samples(1.0, 2.0))

    assert (rejection.value.status, rejection.value.reason) == (413, "Request body too large")
    assert alice.stored_values(token, ALL, 0, 1e11) == _values(_samples(1.0, 2.0))


def test_an_unknown_session_is_expired_with_the_servers_reason(connect: Connect) -> None:
    alice = connect("alice", "pw")
    alice.register()

    with pytest.raises(SessionExpired) as on_post:
        alice.post_samples(UNKNOWN_SESSION, _samples(1.0))
    with pytest.raises(SessionExpired) as on_read:
        alice.stored_values(UNKNOWN_SESSION, ["cpu"], T0, T0)

    assert str(on_post.value) == "server answered 401: Not authorized user try to post data, please login"
    assert str(on_read.value) == "server answered 401: Not authorized user try to get data, please login"


def test_an_ingest_keys_session_posts_to_the_keys_users_host_and_may_not_read(
    connect: Connect, connect_with_key: ConnectWithKey, make_key: MakeKey
) -> None:
    alice = connect("alice", "pw")
    alice.register()
    key, _ = make_key("alice", "pw", "ingest")
    agent = connect_with_key(key)

    token = agent.log_in()
    agent.post_samples(token, _samples(1.0, 2.0))
    with pytest.raises(Forbidden) as refusal:
        agent.stored_values(token, ["cpu"], T0, T0 + 10)

    assert agent.user is None
    assert str(refusal.value) == "server answered 403: Forbidden"
    assert alice.stored_values(alice.log_in(), ALL, T0, T0 + 10) == _values(_samples(1.0, 2.0))


def test_a_read_keys_session_may_not_post(
    connect: Connect, connect_with_key: ConnectWithKey, make_key: MakeKey
) -> None:
    connect("alice", "pw").register()
    key, _ = make_key("alice", "pw", "read")
    display = connect_with_key(key)
    token = display.log_in()

    with pytest.raises(Forbidden) as refusal:
        display.post_samples(token, _samples(1.0))

    assert str(refusal.value) == "server answered 403: Forbidden"


def test_a_revoked_keys_sessions_are_expired_and_the_key_is_refused_at_log_in(
    connect: Connect, connect_with_key: ConnectWithKey, make_key: MakeKey
) -> None:
    connect("alice", "pw").register()
    key, revoke = make_key("alice", "pw", "ingest")
    agent = connect_with_key(key)
    token = agent.log_in()
    agent.post_samples(token, _samples(1.0))

    revoke()

    with pytest.raises(SessionExpired) as on_post:
        agent.post_samples(token, _samples(2.0, start=T0 + 1))
    with pytest.raises(KeyRefused) as on_log_in:
        agent.log_in()
    assert str(on_post.value) == "server answered 401: Not authorized user try to post data, please login"
    assert str(on_log_in.value) == "log in refused: Wrong credentials or user is not registered"


def test_a_key_that_was_never_made_is_refused_at_log_in(connect_with_key: ConnectWithKey) -> None:
    with pytest.raises(KeyRefused) as refusal:
        connect_with_key("pmk_" + "A" * 43).log_in()

    assert str(refusal.value) == "log in refused: Wrong credentials or user is not registered"
