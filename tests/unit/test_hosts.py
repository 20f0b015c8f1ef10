"""Hosts (PROTOCOL.md part 3) in the domain: sessions on a host, a host's merged series, GET /hosts' overview,
and the rules of a multi-metric sample. Over the in-memory adapters, with a clock the tests move."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from limits.storage import MemoryStorage

from perfmon.adapters.login_throttle import LimitsLoginThrottle
from perfmon.adapters.memory import (
    InMemoryKeyRepository,
    InMemorySampleRepository,
    InMemorySessionRepository,
    InMemoryUserRepository,
)
from perfmon.domain.access import KeyUsage, SessionGate
from perfmon.domain.accounts import Accounts
from perfmon.domain.downsampling import downsample
from perfmon.domain.errors import HostNotFound, InvalidInput, SessionNotFound
from perfmon.domain.history import History
from perfmon.domain.model import (
    CATALOGUE,
    EVERYTHING,
    HostOverview,
    Point,
    Sample,
    TimeRange,
    metric_sample,
)
from tests.fakes import FastHasher, FixedClock, SequentialTokens

NOON = 1_699_963_200.0


class World:
    """Accounts and history over one in-memory storage, with one clock the test moves."""

    def __init__(self) -> None:
        self.clock = FixedClock(NOON)
        sessions = InMemorySessionRepository()
        self.samples = samples = InMemorySampleRepository(sessions)
        throttle = LimitsLoginThrottle(MemoryStorage(), self.clock)
        users = InMemoryUserRepository(sessions)
        keys = InMemoryKeyRepository(sessions)
        usage = KeyUsage(keys, self.clock)
        self.accounts = Accounts(
            users, sessions, FastHasher(), SequentialTokens(), self.clock, throttle, keys, usage
        )
        self.history = History(SessionGate(sessions, usage), sessions, samples, self.clock)

    def login(self, user: str = "alice", host: str | None = "web-1") -> str:
        """A new session of the user on the host, a second after the last one."""
        self.clock.now += 1
        try:
            return self.accounts.log_in(user, "pw", "192.0.2.1", host=host).token
        except Exception:
            return self.accounts.register(user, "pw", host=host).token


@pytest.fixture
def world() -> World:
    return World()


def _cpu(value: float, moment: float) -> Sample:
    return Sample(moment, {"cpu": value})


def test_a_session_opened_on_a_host_belongs_to_it(world: World) -> None:
    token = world.login(host="web-1")
    assert world.history.session(token).host == "web-1"
    assert world.history.session(world.login(host=None)).host is None


@pytest.mark.parametrize("host", ["", "x" * 129, "web\n1", "tab\there", "\x7f"])
def test_a_bad_host_name_opens_no_session(world: World, host: str) -> None:
    with pytest.raises(InvalidInput, match="host"):
        world.accounts.register("alice", "pw", host=host)
    # Nothing was made: the name is still free.
    assert world.accounts.register("alice", "pw", host="ok").host == "ok"


def test_a_host_read_merges_its_sessions_by_time(world: World) -> None:
    first = world.login()
    world.history.record(first, [_cpu(1.0, NOON + 1), _cpu(3.0, NOON + 3)])
    second = world.login()  # the agent restarted
    world.history.record(second, [_cpu(2.0, NOON + 2), _cpu(4.0, NOON + 4)])
    other_host = world.login(host="db-1")
    world.history.record(other_host, [_cpu(99.0, NOON + 2.5)])

    merged = world.history.samples(second, EVERYTHING, host="web-1")

    assert list(merged) == [Point(v, NOON + v) for v in (1.0, 2.0, 3.0, 4.0)]
    assert list(world.history.samples(first, TimeRange(NOON + 2, NOON + 3), host="web-1")) == [
        Point(2.0, NOON + 2),
        Point(3.0, NOON + 3),
    ]


def test_equal_times_of_two_sessions_read_in_the_order_the_sessions_were_opened(world: World) -> None:
    older, newer = world.login(), world.login()
    world.history.record(newer, [_cpu(2.0, NOON)])
    world.history.record(older, [_cpu(1.0, NOON)])

    assert list(world.history.samples(newer, EVERYTHING, host="web-1")) == [
        Point(1.0, NOON),
        Point(2.0, NOON),
    ]


def test_another_users_host_reads_exactly_like_no_host(world: World) -> None:
    world.history.record(world.login("bob", "secret-box"), [_cpu(1.0, NOON)])
    alice = world.login("alice", "web-1")

    with pytest.raises(HostNotFound) as theirs:
        world.history.samples(alice, EVERYTHING, host="secret-box")
    with pytest.raises(HostNotFound) as missing:
        world.history.samples(alice, EVERYTHING, host="no-such-box")
    assert str(theirs.value) == str(missing.value)
    with pytest.raises(HostNotFound):
        world.history.buckets(alice, EVERYTHING, 60.0, host="secret-box")


def test_session_and_host_together_are_invalid(world: World) -> None:
    token = world.login()
    with pytest.raises(InvalidInput, match="session and host"):
        world.history.samples(token, EVERYTHING, of_session=token, host="web-1")


def test_another_users_session_is_still_not_found(world: World) -> None:
    bob = world.login("bob")
    with pytest.raises(SessionNotFound):
        world.history.samples(world.login("alice"), EVERYTHING, of_session=bob)


@given(
    parts=st.lists(
        st.lists(
            st.tuples(
                st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
                st.integers(min_value=0, max_value=4 * 3600).map(lambda s: NOON + s / 4),
            ),
            max_size=40,
        ),
        min_size=1,
        max_size=3,
    ),
    step=st.sampled_from([1.0, 7.0, 60.0, 120.0, 3600.0, 7200.0, 86400.0]),
    bounds=st.tuples(st.integers(0, 4 * 3600), st.integers(0, 4 * 3600)).map(sorted),
)
def test_a_host_step_read_equals_downsampling_its_merged_samples(
    parts: list[list[tuple[float, float]]], step: float, bounds: list[int]
) -> None:
    world = World()
    tokens = [world.login() for _ in parts]
    for token, part in zip(tokens, parts, strict=True):
        if part:
            world.history.record(token, [_cpu(value, moment) for value, moment in part])
    time_range = TimeRange(NOON + bounds[0] / 4, NOON + bounds[1] / 4)

    raw = world.history.samples(tokens[0], time_range, host="web-1")
    expected = sorted((p for part in parts for p in part), key=lambda pair: pair[1])
    assert sorted(raw.taken_at) == raw.taken_at
    assert sorted(zip(raw.values, raw.taken_at, strict=True)) == sorted(
        (v, t) for v, t in expected if time_range.contains(t)
    )
    assert world.history.buckets(tokens[0], time_range, step, host="web-1") == downsample(raw, step)


def test_hosts_lists_each_host_of_the_user_by_code_point_with_its_summary(world: World) -> None:
    web_old = world.login(host="web-1")
    world.clock.now = NOON + 100
    world.history.record(
        web_old, [Sample(NOON + 10, {"cpu": 5.0, "mem": 40.0}), Sample(NOON + 20, {"cpu": 6.0})]
    )
    web_new = world.login(host="web-1")
    world.clock.now = NOON + 200
    world.history.record(web_new, [Sample(NOON + 15, {"mem": 41.0, "temp": -2.0})])
    world.login(host="Zeta")  # no samples yet
    world.login(host="é")
    world.login(host=None)  # the original client's: no host
    world.history.record(world.login("bob", host="bob-box"), [_cpu(1.0, NOON)])

    hosts = world.history.hosts(web_new)

    assert hosts == [
        HostOverview("Zeta", 1, None, None, None, {}),
        HostOverview(
            "web-1",
            2,
            first=NOON + 10,
            last=NOON + 20,
            seen=NOON + 200,
            latest={"cpu": 6.0, "mem": 41.0, "temp": -2.0},
        ),
        HostOverview("é", 1, None, None, None, {}),
    ]


def test_of_equal_latest_times_the_newer_sessions_value_is_the_hosts(world: World) -> None:
    older, newer = world.login(), world.login()
    world.history.record(newer, [_cpu(2.0, NOON)])
    world.history.record(older, [_cpu(1.0, NOON)])

    assert world.history.hosts(older)[0].latest == {"cpu": 2.0}


def test_recording_sets_seen_to_the_servers_clock_not_the_samples_time(world: World) -> None:
    token = world.login()
    world.clock.now = NOON + 3600
    world.history.record(token, [_cpu(1.0, 5.0)])

    (host,) = world.history.hosts(token)
    assert (host.seen, host.first, host.last) == (NOON + 3600, 5.0, 5.0)


def test_only_sessions_on_a_host_keep_a_status(world: World) -> None:
    # GET /hosts sums up hosts' sessions only: the original client's posts keep no status, which spares
    # each of them a second file write in the file storage.
    on_host, without = world.login(host="web-1"), world.login(host=None)
    world.history.record(on_host, [_cpu(1.0, NOON)])
    world.history.record(without, [_cpu(2.0, NOON)])

    assert set(world.samples.status([on_host, without])) == {on_host}
    assert list(world.history.samples(without, EVERYTHING)) == [Point(2.0, NOON)]


def test_a_catalogue_sample_keeps_its_values_exactly() -> None:
    values = {"cpu": 12.5, "mem": 0.1 + 0.2, "temp": -40.0, "disk_read": 1e12, "custom_gauge": -3}
    assert metric_sample(NOON, values) == Sample(NOON, values)


@pytest.mark.parametrize("metric", sorted(set(CATALOGUE) - {"temp"}))
def test_every_catalogue_metric_but_temp_must_not_be_negative(metric: str) -> None:
    with pytest.raises(InvalidInput, match=f"^{metric} must be a finite number >= 0$"):
        metric_sample(NOON, {"cpu": 1.0, metric: -0.5})


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({}, "metrics must hold 1..64"),
        ({f"m{i}": 1.0 for i in range(65)}, "metrics must hold 1..64"),
        ({"Cpu": 1.0}, "'Cpu' is not a metric name"),
        ({"cpu": 1.0, "9lives": 1.0}, "'9lives' is not a metric name"),
        ({"x" * 65: 1.0}, "is not a metric name"),
        ({"temp": math.inf}, "temp must be a finite number"),
        ({"mem": True}, "mem must be a finite number"),
        ({"mem": "41"}, "mem must be a finite number"),
        ({"mem": None}, "mem must be a finite number"),
        ({"mem": 10**400}, "mem must be a finite number"),
    ],
)
def test_a_bad_sample_names_what_is_wrong(values: dict[str, object], named: str) -> None:
    with pytest.raises(InvalidInput, match=named):
        metric_sample(NOON, values)  # type: ignore[arg-type]


@pytest.mark.parametrize("moment", [-1.0, 1e11, math.nan])
def test_a_sample_time_outside_the_protocol_is_refused(moment: float) -> None:
    with pytest.raises(InvalidInput, match="time"):
        metric_sample(moment, {"cpu": 1.0})


def test_64_metrics_with_any_finite_value_make_a_sample() -> None:
    values = {f"m{i}": float(-i) for i in range(64)}
    assert metric_sample(0.0, values).values == values
