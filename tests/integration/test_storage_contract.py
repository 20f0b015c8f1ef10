"""One behaviour suite for the repository ports, run against every storage adapter."""

from __future__ import annotations

import threading

import pytest

from perfmon.domain.errors import UsernameTaken
from perfmon.domain.model import (
    Session,
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


def test_a_user_without_sessions_has_none(repositories: Repositories) -> None:
    repositories.users.add(_user())
    assert repositories.sessions.for_user(Username("alice")) == []


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
