"""The legacy import over in-memory storage: what it keeps, what it skips, what it counts as bad."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from perfmon.adapters.memory import (
    InMemorySampleRepository,
    InMemorySessionRepository,
    InMemoryUserRepository,
)
from perfmon.domain.legacy_import import ImportReport, LegacyImport
from perfmon.domain.legacy_records import LegacySample, LegacySession, LegacySource, LegacyUser
from perfmon.domain.model import EVERYTHING, Point, Session, User, Username
from tests.fakes import FastHasher, FixedClock

HASH_1 = "2948f6fa-d0df-43b8-8183-e014f4c06dbc"
HASH_2 = "7d3c6a0e-5b1f-4c2a-9e8d-1f2a3b4c5d6e"


class ListSource(LegacySource):
    """A legacy source over a list, with as many unparseable lines as the test says."""

    def __init__(self, users: list[LegacyUser], bad_lines: int = 0) -> None:
        self._users = users
        self._bad_lines = bad_lines

    @property
    def bad_lines(self) -> int:
        return self._bad_lines

    def users(self) -> Iterator[LegacyUser]:
        return iter(self._users)


class Unreadable:
    """Samples that must never be read: iterating them fails the test."""

    def __iter__(self) -> Iterator[LegacySample]:
        raise AssertionError("the samples of a skipped session were read")


def legacy_samples(*pairs: tuple[float, float]) -> list[LegacySample]:
    return [LegacySample(cpu, time) for cpu, time in pairs]


def alice() -> LegacyUser:
    sessions = [
        LegacySession(HASH_1, legacy_samples((20.0, 1649596019.895147), (10.0, 1649596020.5))),
        LegacySession(HASH_2, []),
    ]
    return LegacyUser("alice", "passwd, with a comma", sessions)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(1_700_000_000.0)


@pytest.fixture
def legacy_import(
    users: InMemoryUserRepository,
    sessions: InMemorySessionRepository,
    samples: InMemorySampleRepository,
    clock: FixedClock,
) -> LegacyImport:
    return LegacyImport(users, sessions, samples, FastHasher(), clock, batch_size=3)


def test_import_keeps_the_session_hashes_and_their_samples(
    legacy_import: LegacyImport, sessions: InMemorySessionRepository, samples: InMemorySampleRepository
) -> None:
    report = legacy_import.run(ListSource([alice()]))

    assert report == ImportReport(users_imported=1, sessions_imported=2, samples_imported=2)
    assert sessions.get(HASH_1) == Session(HASH_1, Username("alice"), created_at=1649596019.895147)
    assert samples.between(HASH_1, "cpu", EVERYTHING) == [
        Point(20.0, 1649596019.895147),
        Point(10.0, 1649596020.5),
    ]


def test_a_session_without_samples_starts_at_the_time_of_the_import(
    legacy_import: LegacyImport, sessions: InMemorySessionRepository, clock: FixedClock
) -> None:
    legacy_import.run(ListSource([alice()]))

    assert sessions.get(HASH_2) == Session(HASH_2, Username("alice"), created_at=clock.now)


def test_import_stores_only_a_hash_of_the_password(
    legacy_import: LegacyImport, users: InMemoryUserRepository
) -> None:
    legacy_import.run(ListSource([alice()]))

    user = users.get(Username("alice"))
    assert user is not None
    assert "passwd, with a comma" not in user.password_hash
    assert FastHasher().verify(user.password_hash, "passwd, with a comma")


def test_a_legacy_user_never_shows_its_password() -> None:
    assert "passwd" not in repr(alice())


def test_hashes_in_other_uuid_spellings_are_stored_canonically(
    legacy_import: LegacyImport, sessions: InMemorySessionRepository, samples: InMemorySampleRepository
) -> None:
    hex_hash = uuid.UUID(HASH_1).hex.upper()
    user = LegacyUser("bob", "pw", [LegacySession(f" {hex_hash} ", legacy_samples((1.0, 2.0)))])

    legacy_import.run(ListSource([user]))

    assert sessions.get(HASH_1) is not None
    assert samples.between(HASH_1, "cpu", EVERYTHING) == [Point(1.0, 2.0)]


def test_a_second_run_imports_nothing_and_reads_no_samples_again(legacy_import: LegacyImport) -> None:
    legacy_import.run(ListSource([alice()]))
    again = LegacyUser("alice", "passwd, with a comma", [LegacySession(HASH_1, Unreadable())])

    report = legacy_import.run(ListSource([again]))

    assert report == ImportReport(users_skipped=1, sessions_skipped=1)


def test_an_existing_user_keeps_its_password_and_gains_the_missing_sessions(
    legacy_import: LegacyImport, users: InMemoryUserRepository, samples: InMemorySampleRepository
) -> None:
    users.add(User(Username("alice"), FastHasher().hash("the perfmon password")))

    report = legacy_import.run(ListSource([alice()]))

    assert report == ImportReport(users_skipped=1, sessions_imported=2, samples_imported=2)
    user = users.get(Username("alice"))
    assert user is not None and FastHasher().verify(user.password_hash, "the perfmon password")
    assert len(samples.between(HASH_1, "cpu", EVERYTHING)) == 2


def test_bad_users_hashes_and_samples_are_counted_and_the_rest_imported(
    legacy_import: LegacyImport, samples: InMemorySampleRepository
) -> None:
    mixed_quality = [
        LegacySample(5.0, 100.0),
        LegacySample(-1.0, 101.0),
        LegacySample(float("nan"), 102.0),
        LegacySample(6.0, 1e12),
        LegacySample(7.0, float("inf")),
        LegacySample(8.0, 103.0),
    ]
    source = ListSource(
        [
            LegacyUser("", "pw", [LegacySession(HASH_2, Unreadable())]),
            LegacyUser("x" * 129, "pw", []),
            LegacyUser("bell\a", "pw", []),
            LegacyUser("no password", "", []),
            LegacyUser("carol", "pw", [LegacySession("not-a-uuid", Unreadable())]),
            LegacyUser("dave", "pw", [LegacySession(HASH_1, mixed_quality)]),
        ],
        bad_lines=2,
    )

    report = legacy_import.run(source)

    assert report == ImportReport(users_imported=2, sessions_imported=1, samples_imported=2, bad_lines=11)
    assert samples.between(HASH_1, "cpu", EVERYTHING) == [Point(5.0, 100.0), Point(8.0, 103.0)]


def test_a_hash_that_is_another_users_session_is_not_handed_over(
    legacy_import: LegacyImport, sessions: InMemorySessionRepository
) -> None:
    legacy_import.run(ListSource([alice()]))
    mallory = LegacyUser("mallory", "pw", [LegacySession(HASH_1, Unreadable())])

    report = legacy_import.run(ListSource([mallory]))

    assert report == ImportReport(users_imported=1, bad_lines=1)
    assert sessions.get(HASH_1) == Session(HASH_1, Username("alice"), created_at=1649596019.895147)


def test_samples_are_stored_in_batches_and_each_batch_is_reported(
    legacy_import: LegacyImport, samples: InMemorySampleRepository
) -> None:
    many = [LegacySample(float(i), 1000.0 + i) for i in range(7)]
    seen: list[int] = []

    legacy_import.run(
        ListSource([LegacyUser("eve", "pw", [LegacySession(HASH_1, many)])]),
        on_progress=lambda report: seen.append(report.samples_imported),
    )

    assert seen == [3, 6, 7, 7]
    assert samples.between(HASH_1, "cpu", EVERYTHING) == [Point(float(i), 1000.0 + i) for i in range(7)]
