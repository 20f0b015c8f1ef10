"""One behaviour suite for what part 3 (hosts and metrics) asks of every storage adapter: sessions on a
host, the session status that GET /hosts sums up, and the 256-series limit."""

from __future__ import annotations

import pytest

from perfmon.domain.errors import TooManySeries
from perfmon.domain.model import (
    EVERYTHING,
    MAX_SERIES_PER_SESSION,
    Point,
    Sample,
    Session,
    SessionStatus,
    User,
    Username,
)
from tests.storage_kinds import Repositories

TOKEN = "0b7e7a2e-5a55-4d1c-9d0e-6f0c3c1f2a11"
OTHER_TOKEN = "7d1f0f5e-2c3b-4a9e-8f6d-1a2b3c4d5e6f"
NOON = 1_699_963_200.0


def _open(repos: Repositories, token: str = TOKEN, host: str | None = "web-1", name: str = "alice") -> str:
    if repos.users.get(Username(name)) is None:
        repos.users.add(User(Username(name), "argon2id-hash-of-secret"))
    repos.sessions.add(Session(token=token, user=Username(name), created_at=1_700_000_000.25, host=host))
    return token


@pytest.mark.parametrize("host", ["web-1", None, "é 🖥 ../../etc/passwd; DROP TABLE sessions", "x" * 128])
def test_a_session_keeps_its_host(repositories: Repositories, host: str | None) -> None:
    _open(repositories, host=host)

    assert repositories.sessions.get(TOKEN) == Session(TOKEN, Username("alice"), 1_700_000_000.25, host)
    assert [session.host for session in repositories.sessions.for_user(Username("alice"))] == [host]


def test_two_users_may_each_have_a_host_of_one_name(repositories: Repositories) -> None:
    _open(repositories, TOKEN, "web-1", "alice")
    _open(repositories, OTHER_TOKEN, "web-1", "bob")

    assert [s.token for s in repositories.sessions.for_user(Username("bob")) if s.host == "web-1"] == [
        OTHER_TOKEN
    ]


def test_a_session_without_samples_has_no_status(repositories: Repositories) -> None:
    _open(repositories)

    assert repositories.samples.status([TOKEN, OTHER_TOKEN]) == {}


def test_status_holds_seen_first_and_the_latest_sample_of_each_metric(repositories: Repositories) -> None:
    _open(repositories)
    repositories.samples.append(
        TOKEN,
        [Sample(NOON + 10, {"cpu": 5.0, "mem": 40.0}), Sample(NOON, {"cpu": 7.0, "temp": -3.5})],
        received_at=NOON + 11.5,
    )

    assert repositories.samples.status([TOKEN]) == {
        TOKEN: SessionStatus(
            seen=NOON + 11.5,
            first=NOON,
            latest={"cpu": Point(5.0, NOON + 10), "mem": Point(40.0, NOON + 10), "temp": Point(-3.5, NOON)},
        )
    }


def test_a_late_sample_moves_first_and_seen_but_not_latest(repositories: Repositories) -> None:
    _open(repositories)
    repositories.samples.append(TOKEN, [Sample(NOON, {"cpu": 5.0})], received_at=NOON + 1)
    # A spool drained after an outage: older samples, arriving later, in another day.
    repositories.samples.append(TOKEN, [Sample(NOON - 86_400, {"cpu": 9.0})], received_at=NOON + 600)

    status = repositories.samples.status([TOKEN])[TOKEN]
    assert (status.seen, status.first, status.last) == (NOON + 600, NOON - 86_400, NOON)
    assert status.latest == {"cpu": Point(5.0, NOON)}


def test_of_equal_times_the_later_arrival_is_the_latest(repositories: Repositories) -> None:
    _open(repositories)
    repositories.samples.append(
        TOKEN, [Sample(NOON, {"cpu": 1.0}), Sample(NOON, {"cpu": 2.0})], received_at=NOON
    )
    repositories.samples.append(TOKEN, [Sample(NOON, {"cpu": 3.0})], received_at=NOON)

    assert repositories.samples.status([TOKEN])[TOKEN].latest == {"cpu": Point(3.0, NOON)}


def test_a_write_without_a_receive_time_moves_no_status(repositories: Repositories) -> None:
    # History leaves the receive time out for sessions without a host (nothing reads their status), and
    # an import has none: such writes store their samples and leave the status as it was.
    _open(repositories)
    repositories.samples.append(TOKEN, [Sample(NOON, {"cpu": 1.0})])
    assert repositories.samples.status([TOKEN]) == {}

    repositories.samples.append(TOKEN, [Sample(NOON + 1, {"cpu": 2.0})], received_at=NOON + 2)
    repositories.samples.append(TOKEN, [Sample(NOON + 3, {"cpu": 3.0}), Sample(NOON - 9, {"mem": 4.0})])

    assert repositories.samples.status([TOKEN])[TOKEN] == SessionStatus(
        NOON + 2, NOON + 1, {"cpu": Point(2.0, NOON + 1)}
    )
    assert list(repositories.samples.between(TOKEN, "cpu", EVERYTHING)) == [
        Point(1.0, NOON),
        Point(2.0, NOON + 1),
        Point(3.0, NOON + 3),
    ]


def test_status_is_per_session(repositories: Repositories) -> None:
    _open(repositories, TOKEN)
    _open(repositories, OTHER_TOKEN)
    repositories.samples.append(TOKEN, [Sample(NOON, {"cpu": 1.0})], received_at=NOON)
    repositories.samples.append(OTHER_TOKEN, [Sample(NOON + 5, {"mem": 2.0})], received_at=NOON + 5)

    found = repositories.samples.status([TOKEN, OTHER_TOKEN, "5a1f0f5e-2c3b-4a9e-8f6d-1a2b3c4d5e6f"])
    assert found == {
        TOKEN: SessionStatus(NOON, NOON, {"cpu": Point(1.0, NOON)}),
        OTHER_TOKEN: SessionStatus(NOON + 5, NOON + 5, {"mem": Point(2.0, NOON + 5)}),
    }


def test_values_round_trip_exactly_in_the_status(repositories: Repositories) -> None:
    _open(repositories)
    tiny, huge = 5e-324, 1.7976931348623157e308
    repositories.samples.append(
        TOKEN, [Sample(0.1 + 0.2, {"a": tiny, "b": -huge, "c": -0.0})], received_at=1e-9
    )

    status = repositories.samples.status([TOKEN])[TOKEN]
    assert status == SessionStatus(
        1e-9,
        0.1 + 0.2,
        {"a": Point(tiny, 0.1 + 0.2), "b": Point(-huge, 0.1 + 0.2), "c": Point(-0.0, 0.1 + 0.2)},
    )
    assert str(status.latest["c"].value) == "-0.0"


def test_a_session_holds_at_most_256_series_and_a_write_past_that_stores_nothing(
    repositories: Repositories,
) -> None:
    _open(repositories)
    names = [f"m{index}" for index in range(MAX_SERIES_PER_SESSION)]
    for offset in range(0, len(names), 64):
        chunk = names[offset : offset + 64]
        repositories.samples.append(TOKEN, [Sample(NOON, dict.fromkeys(chunk, 1.0))], received_at=NOON)
    before = repositories.samples.status([TOKEN])

    with pytest.raises(TooManySeries):
        repositories.samples.append(
            TOKEN, [Sample(NOON + 1, {"cpu": 2.0}), Sample(NOON + 1, {"extra": 1.0})], received_at=NOON + 1
        )

    assert repositories.samples.metrics(TOKEN) == sorted(names)
    assert list(repositories.samples.between(TOKEN, "cpu", EVERYTHING)) == []
    assert repositories.samples.status([TOKEN]) == before
    # The known series still take samples.
    repositories.samples.append(TOKEN, [Sample(NOON + 2, {"m0": 3.0, "m255": 4.0})], received_at=NOON + 2)
    assert repositories.samples.status([TOKEN])[TOKEN].latest["m255"] == Point(4.0, NOON + 2)
