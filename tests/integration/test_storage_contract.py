"""One behaviour suite for the repository ports, run against every storage adapter."""

from __future__ import annotations

import threading

import pytest

from perfmon.domain.errors import UnknownSession, UsernameTaken
from perfmon.domain.model import (
    EVERYTHING,
    NO_SAMPLES,
    CpuSample,
    SampleSummary,
    Session,
    TimeRange,
    User,
    Username,
)
from tests.storage_kinds import Repositories

TOKEN = "0b7e7a2e-5a55-4d1c-9d0e-6f0c3c1f2a11"
OTHER_TOKEN = "7d1f0f5e-2c3b-4a9e-8f6d-1a2b3c4d5e6f"


def _user(name: str = "alice") -> User:
    return User(Username(name), "argon2id-hash-of-secret")


def _open_session(repos: Repositories, token: str = TOKEN, name: str = "alice") -> Session:
    session = Session(token=token, user=Username(name), created_at=1_700_000_000.25)
    repos.sessions.add(session)
    return session


def test_added_user_is_found_by_name(repositories: Repositories) -> None:
    repositories.users.add(_user())
    assert repositories.users.get(Username("alice")) == _user()


def test_unknown_user_is_none(repositories: Repositories) -> None:
    assert repositories.users.get(Username("nobody")) is None


def test_adding_a_taken_name_raises_username_taken_and_keeps_the_first(repositories: Repositories) -> None:
    repositories.users.add(_user())
    with pytest.raises(UsernameTaken):
        repositories.users.add(User(Username("alice"), "another-hash"))
    assert repositories.users.get(Username("alice")) == _user()


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "a/b",
        "..",
        ".",
        "back\\slash",
        "com,ma",
        "ü" * 128,
        "😀" * 128,
        "CON",
        "alice ",
        " ",
        "-rf",
        "*",
        "a" * 128,
    ],
)
def test_any_valid_name_is_stored_as_data(repositories: Repositories, name: str) -> None:
    repositories.users.add(_user(name))
    assert repositories.users.get(Username(name)) == _user(name)


def test_names_differing_only_in_case_are_different_users(repositories: Repositories) -> None:
    repositories.users.add(_user("alice"))
    repositories.users.add(_user("ALICE"))
    assert repositories.users.get(Username("ALICE")) == _user("ALICE")


def test_concurrent_adds_of_one_name_let_exactly_one_win(repositories: Repositories) -> None:
    outcomes: list[str] = []
    barrier = threading.Barrier(10)

    def add(index: int) -> None:
        barrier.wait()
        try:
            repositories.users.add(User(Username("racer"), f"hash-{index}"))
            outcomes.append("won")
        except UsernameTaken:
            outcomes.append("taken")

    threads = [threading.Thread(target=add, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["taken"] * 9 + ["won"]


def test_added_session_is_found_by_token(repositories: Repositories) -> None:
    repositories.users.add(_user())
    session = _open_session(repositories)
    assert repositories.sessions.get(TOKEN) == session


def test_unknown_session_is_none(repositories: Repositories) -> None:
    assert repositories.sessions.get(OTHER_TOKEN) is None


def test_appended_samples_come_back_exactly_in_order(repositories: Repositories) -> None:
    repositories.users.add(_user())
    _open_session(repositories)
    samples = [
        CpuSample(0.1 + 0.2, 1_700_000_000.123456789),
        CpuSample(5e-324, 0.0),
        CpuSample(100.0, 1e11 - 1),
    ]
    repositories.samples.append(TOKEN, samples[:1])
    repositories.samples.append(TOKEN, samples[1:])
    assert repositories.samples.between(TOKEN, EVERYTHING) == sorted(samples, key=lambda s: s.taken_at)


def test_equal_times_keep_arrival_order(repositories: Repositories) -> None:
    repositories.users.add(_user())
    _open_session(repositories)
    samples = [CpuSample(float(i), 10.0) for i in range(5)] + [CpuSample(9.0, 5.0)]
    repositories.samples.append(TOKEN, samples)
    assert repositories.samples.between(TOKEN, EVERYTHING) == [samples[5], *samples[:5]]


def test_between_keeps_only_the_inclusive_range(repositories: Repositories) -> None:
    repositories.users.add(_user())
    _open_session(repositories)
    repositories.samples.append(TOKEN, [CpuSample(float(t), float(t)) for t in range(10)])
    got = repositories.samples.between(TOKEN, TimeRange(3.0, 6.0))
    assert [s.taken_at for s in got] == [3.0, 4.0, 5.0, 6.0]
    assert [s.taken_at for s in repositories.samples.between(TOKEN, TimeRange(start=8.0))] == [8.0, 9.0]
    assert [s.taken_at for s in repositories.samples.between(TOKEN, TimeRange(end=1.0))] == [0.0, 1.0]


def test_new_session_has_no_samples_and_sessions_do_not_mix(repositories: Repositories) -> None:
    repositories.users.add(_user())
    _open_session(repositories)
    _open_session(repositories, OTHER_TOKEN)
    repositories.samples.append(TOKEN, [CpuSample(1.0, 1.0)])
    assert repositories.samples.between(OTHER_TOKEN, EVERYTHING) == []


def test_concurrent_appends_lose_nothing(repositories: Repositories) -> None:
    repositories.users.add(_user())
    _open_session(repositories)

    def post(thread_index: int) -> None:
        for i in range(50):
            repositories.samples.append(TOKEN, [CpuSample(float(thread_index), float(i))])

    threads = [threading.Thread(target=post, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = repositories.samples.between(TOKEN, EVERYTHING)
    assert len(stored) == 800
    assert sorted((s.cpu, s.taken_at) for s in stored) == sorted(
        (float(t), float(i)) for t in range(16) for i in range(50)
    )


@pytest.mark.parametrize("count", [1, 3], ids=["one sample", "a batch"])
def test_appending_to_an_unknown_session_raises_unknown_session_and_stores_nothing(
    repositories: Repositories, count: int
) -> None:
    # The domain checks the session first: this is the race of a session that vanished since.
    repositories.users.add(_user())
    _open_session(repositories)
    with pytest.raises(UnknownSession):
        repositories.samples.append(OTHER_TOKEN, [CpuSample(1.0, float(t)) for t in range(count)])
    assert repositories.samples.between(OTHER_TOKEN, EVERYTHING) == []
    assert repositories.samples.summaries([OTHER_TOKEN]).get(OTHER_TOKEN, NO_SAMPLES) == NO_SAMPLES
    repositories.samples.append(TOKEN, [CpuSample(2.0, 2.0)])
    assert repositories.samples.between(TOKEN, EVERYTHING) == [CpuSample(2.0, 2.0)]


def test_an_append_to_an_unknown_session_fails_alone_among_concurrent_appends(
    repositories: Repositories,
) -> None:
    repositories.users.add(_user())
    _open_session(repositories)
    # Together, so that a storage that writes concurrent appends as one group (PostgreSQL) gets them in one.
    start = threading.Barrier(9)
    failures: dict[str, BaseException] = {}

    def post(token: str, thread_index: int) -> None:
        start.wait(timeout=10)
        try:
            repositories.samples.append(token, [CpuSample(float(thread_index), float(i)) for i in range(20)])
        except Exception as error:  # noqa: BLE001 - recorded and asserted on below
            failures[f"{token}/{thread_index}"] = error

    threads = [threading.Thread(target=post, args=(TOKEN, t)) for t in range(8)]
    threads.append(threading.Thread(target=post, args=(OTHER_TOKEN, 8)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert list(failures) == [f"{OTHER_TOKEN}/8"]
    assert isinstance(failures[f"{OTHER_TOKEN}/8"], UnknownSession)
    assert len(repositories.samples.between(TOKEN, EVERYTHING)) == 8 * 20


def test_sessions_of_a_user_come_newest_first_and_only_theirs(repositories: Repositories) -> None:
    repositories.users.add(_user("alice"))
    repositories.users.add(_user("bob"))
    older = Session(TOKEN, Username("alice"), 100.0)
    newer = Session(OTHER_TOKEN, Username("alice"), 200.0)
    bobs = Session("5a0c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d", Username("bob"), 300.0)
    for session in (older, newer, bobs):
        repositories.sessions.add(session)
    assert repositories.sessions.for_user(Username("alice")) == [newer, older]
    assert repositories.sessions.for_user(Username("nobody")) == []


def test_summaries_count_samples_and_their_first_and_last_times(repositories: Repositories) -> None:
    repositories.users.add(_user())
    _open_session(repositories)
    _open_session(repositories, OTHER_TOKEN)
    repositories.samples.append(TOKEN, [CpuSample(1.0, 30.0), CpuSample(2.0, 10.0), CpuSample(3.0, 20.0)])
    summaries = repositories.samples.summaries([TOKEN, OTHER_TOKEN])
    assert summaries[TOKEN] == SampleSummary(3, 10.0, 30.0)
    assert summaries.get(OTHER_TOKEN, NO_SAMPLES) == NO_SAMPLES


def test_buckets_reduce_each_step_to_mean_min_max_and_count(repositories: Repositories) -> None:
    repositories.users.add(_user())
    _open_session(repositories)
    moments_and_cpus = [(0.0, 10.0), (59.9, 20.0), (60.0, 5.0), (61.0, 7.0), (185.5, 1.0), (240.0, 0.0)]
    repositories.samples.append(TOKEN, [CpuSample(cpu, moment) for moment, cpu in moments_and_cpus])
    buckets = repositories.samples.buckets(TOKEN, EVERYTHING, 60.0)
    assert [(b.start, b.low, b.high, b.count) for b in buckets] == [
        (0.0, 10.0, 20.0, 2),
        (60.0, 5.0, 7.0, 2),
        (180.0, 1.0, 1.0, 1),
        (240.0, 0.0, 0.0, 1),
    ]
    assert [b.mean for b in buckets] == pytest.approx([15.0, 6.0, 1.0, 0.0])


def test_buckets_keep_to_the_time_range_and_fractional_steps(repositories: Repositories) -> None:
    repositories.users.add(_user())
    _open_session(repositories)
    repositories.samples.append(TOKEN, [CpuSample(float(i), 1_700_000_000 + i * 0.25) for i in range(8)])
    buckets = repositories.samples.buckets(TOKEN, TimeRange(1_700_000_000.5, 1_700_000_001.5), 0.5)
    assert [(b.start, b.count) for b in buckets] == [
        (1_700_000_000.5, 2),
        (1_700_000_001.0, 2),
        (1_700_000_001.5, 1),
    ]
    assert repositories.samples.buckets(OTHER_TOKEN, EVERYTHING, 1.0) == []


def test_a_batch_of_ten_thousand_samples_in_one_append_is_stored_whole(repositories: Repositories) -> None:
    repositories.users.add(_user())
    _open_session(repositories)
    batch = [CpuSample((i * 7.3) % 100, 1_700_000_000 + i * 0.001) for i in range(10_000)]
    repositories.samples.append(TOKEN, batch)
    assert repositories.samples.between(TOKEN, EVERYTHING) == batch


def test_a_user_without_sessions_has_none(repositories: Repositories) -> None:
    repositories.users.add(_user())
    assert repositories.sessions.for_user(Username("alice")) == []


def test_bucket_means_stay_finite_at_the_largest_cpu_values(repositories: Repositories) -> None:
    repositories.users.add(_user())
    _open_session(repositories)
    largest = 1.7976931348623157e308
    repositories.samples.append(TOKEN, [CpuSample(largest, 1.0), CpuSample(largest, 2.0)])
    (bucket,) = repositories.samples.buckets(TOKEN, EVERYTHING, 10.0)
    assert bucket.mean == pytest.approx(largest) and bucket.count == 2


def test_removing_an_unused_user_frees_its_name(repositories: Repositories) -> None:
    repositories.users.add(_user())
    repositories.users.remove_unused(Username("alice"))
    assert repositories.users.get(Username("alice")) is None
    repositories.users.add(User(Username("alice"), "another-hash"))
    assert repositories.users.get(Username("alice")) == User(Username("alice"), "another-hash")


def test_a_user_with_a_session_is_not_removed_as_unused(repositories: Repositories) -> None:
    repositories.users.add(_user())
    session = _open_session(repositories)
    repositories.users.remove_unused(Username("alice"))
    assert repositories.users.get(Username("alice")) == _user()
    assert repositories.sessions.get(TOKEN) == session
    assert repositories.sessions.for_user(Username("alice")) == [session]


def test_removing_an_unknown_user_as_unused_changes_nothing(repositories: Repositories) -> None:
    repositories.users.add(_user("bob"))
    repositories.users.remove_unused(Username("alice"))
    assert repositories.users.get(Username("bob")) == _user("bob")
