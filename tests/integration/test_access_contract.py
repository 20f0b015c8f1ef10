"""One behaviour suite for access keys and closed sessions (PROTOCOL.md part 4), run against every storage
adapter: the memory fake, the files and PostgreSQL. `another_process()` is the same storage as a second
server process sees it, with caches of its own."""

from __future__ import annotations

import dataclasses
import time

import pytest

from perfmon.domain.model import AccessKey, Scope, Session, User, Username, key_digest
from perfmon.domain.ports import CLOSED_EVERYWHERE_WITHIN
from tests.storage_kinds import Repositories, seconds_until_closed

ALICE, BOB = Username("alice"), Username("bob")
TOKEN = "0b7e7a2e-5a55-4d1c-9d0e-6f0c3c1f2a11"
OTHER_TOKEN = "7d1f0f5e-2c3b-4a9e-8f6d-1a2b3c4d5e6f"
THIRD_TOKEN = "5a0c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d"
# The issue of part 4: a second process refuses a closed session within a second.
WITHIN_A_SECOND = 1.0


@pytest.fixture
def repos(repositories: Repositories) -> Repositories:
    """A storage with users alice and bob."""
    for name in (ALICE, BOB):
        repositories.users.add(User(name, "argon2id-hash"))
    return repositories


def _key(
    number: int, user: Username = ALICE, scope: Scope = Scope.INGEST, name: str = "web-1 agent"
) -> AccessKey:
    return AccessKey(
        id=f"{number:016x}",
        user=user,
        scope=scope,
        name=name,
        created_at=1_700_000_000.0 + number,
        digest=key_digest("pmk_" + f"{number:A>43}"),
    )


def _session(token: str, key: AccessKey | None = None, user: Username = ALICE) -> Session:
    if key is None:
        return Session(token, user, 1_700_000_100.5, host="web-1")
    return Session(token, key.user, 1_700_000_100.5, host="web-1", scope=key.scope, key_id=key.id)


def _closed(session: Session) -> Session:
    return dataclasses.replace(session, closed=True)


def test_an_added_key_is_found_by_its_digest_and_listed_for_its_user_only(repos: Repositories) -> None:
    ingest, read, bobs = _key(1), _key(2, scope=Scope.READ, name="wall display"), _key(3, user=BOB)
    for key in (ingest, read, bobs):
        repos.keys.add(key)
    assert repos.keys.by_digest(read.digest) == read
    assert repos.keys.by_digest(key_digest("pmk_" + "B" * 43)) is None
    assert repos.keys.for_user(ALICE) == [ingest, read]
    assert repos.keys.for_user(BOB) == [bobs]
    assert repos.keys.for_user(Username("nobody")) == []


def test_keys_are_listed_oldest_first(repos: Repositories) -> None:
    newer, older = _key(2), dataclasses.replace(_key(1), created_at=1_600_000_000.0)
    repos.keys.add(newer)
    repos.keys.add(older)
    assert repos.keys.for_user(ALICE) == [older, newer]


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b", ".", "ü" * 128, "😀" * 128, "x,y\"z'", " "])
def test_a_key_name_is_stored_as_data(repos: Repositories, name: str) -> None:
    key = _key(1, name=name)
    repos.keys.add(key)
    assert repos.keys.for_user(ALICE) == [key]
    assert repos.another_process().keys.by_digest(key.digest) == key


def test_revoking_a_key_removes_it_and_only_it(repos: Repositories) -> None:
    kept, revoked = _key(1), _key(2)
    repos.keys.add(kept)
    repos.keys.add(revoked)
    assert repos.keys.revoke(ALICE, revoked.id, 1_700_000_500.0)
    assert repos.keys.by_digest(revoked.digest) is None
    assert repos.keys.for_user(ALICE) == [kept]
    assert repos.keys.by_digest(kept.digest) == kept


def test_revoking_an_unknown_revoked_or_other_users_key_is_false_and_changes_nothing(
    repos: Repositories,
) -> None:
    alices, bobs = _key(1), _key(2, user=BOB)
    repos.keys.add(alices)
    repos.keys.add(bobs)
    assert not repos.keys.revoke(ALICE, bobs.id, 1_700_000_500.0)
    assert not repos.keys.revoke(ALICE, "00000000000000ff", 1_700_000_500.0)
    assert repos.keys.for_user(BOB) == [bobs]
    assert repos.keys.by_digest(bobs.digest) == bobs
    assert repos.keys.revoke(ALICE, alices.id, 1_700_000_500.0)
    assert not repos.keys.revoke(ALICE, alices.id, 1_700_000_600.0)


def test_last_used_moves_forward_only(repos: Repositories) -> None:
    key = _key(1)
    repos.keys.add(key)
    assert repos.keys.for_user(ALICE)[0].last_used is None
    repos.keys.mark_used(key.id, 1_700_000_200.25)
    repos.keys.mark_used(key.id, 1_700_000_150.0)
    assert repos.keys.for_user(ALICE) == [dataclasses.replace(key, last_used=1_700_000_200.25)]
    assert repos.keys.by_digest(key.digest) == dataclasses.replace(key, last_used=1_700_000_200.25)
    assert repos.another_process().keys.for_user(ALICE)[0].last_used == 1_700_000_200.25


def test_marking_a_revoked_key_used_does_not_bring_it_back(repos: Repositories) -> None:
    key = _key(1)
    repos.keys.add(key)
    repos.keys.revoke(ALICE, key.id, 1_700_000_500.0)
    repos.keys.mark_used(key.id, 1_700_000_600.0)
    assert repos.keys.by_digest(key.digest) is None
    assert repos.keys.for_user(ALICE) == []


def test_a_session_keeps_its_scope_and_key(repos: Repositories) -> None:
    ingest, read = _key(1), _key(2, scope=Scope.READ)
    repos.keys.add(ingest)
    repos.keys.add(read)
    sessions = [_session(TOKEN, ingest), _session(OTHER_TOKEN, read), _session(THIRD_TOKEN)]
    for session in sessions:
        repos.sessions.add(session)
    assert [repos.sessions.get(session.token) for session in sessions] == sessions
    reopened = repos.another_process().sessions
    assert [reopened.get(session.token) for session in sessions] == sessions
    assert sorted(reopened.for_user(ALICE), key=lambda s: s.token) == sorted(sessions, key=lambda s: s.token)


def test_a_closed_session_reads_closed_and_is_still_listed(repos: Repositories) -> None:
    closed, kept = _session(TOKEN), dataclasses.replace(_session(OTHER_TOKEN), created_at=1_700_000_000.0)
    repos.sessions.add(closed)
    repos.sessions.add(kept)
    assert repos.sessions.get(TOKEN) == closed
    repos.sessions.close(TOKEN, 1_700_000_200.0)
    repos.sessions.close(TOKEN, 1_700_000_300.0)
    assert repos.sessions.get(TOKEN) == _closed(closed)
    assert repos.sessions.get(OTHER_TOKEN) == kept
    assert repos.sessions.for_user(ALICE) == [_closed(closed), kept]
    assert repos.another_process().sessions.get(TOKEN) == _closed(closed)


def test_revoking_a_key_closes_its_sessions_and_no_other(repos: Repositories) -> None:
    revoked, kept = _key(1), _key(2, scope=Scope.READ)
    repos.keys.add(revoked)
    repos.keys.add(kept)
    of_revoked, of_kept, of_password = (
        _session(TOKEN, revoked),
        _session(OTHER_TOKEN, kept),
        _session(THIRD_TOKEN),
    )
    for session in (of_revoked, of_kept, of_password):
        repos.sessions.add(session)
        assert repos.sessions.get(session.token) == session
    repos.keys.revoke(ALICE, revoked.id, 1_700_000_500.0)
    assert repos.sessions.get(TOKEN) == _closed(of_revoked)
    assert repos.sessions.get(OTHER_TOKEN) == of_kept
    assert repos.sessions.get(THIRD_TOKEN) == of_password
    assert repos.another_process().sessions.get(TOKEN) == _closed(of_revoked)


def test_a_session_opened_with_a_key_as_it_is_revoked_reads_closed(repos: Repositories) -> None:
    # A login found the key live, then the key was revoked before the login stored its session.
    key = _key(1)
    repos.keys.add(key)
    repos.keys.revoke(ALICE, key.id, 1_700_000_500.0)
    repos.another_process().sessions.add(_session(TOKEN, key))
    assert repos.sessions.get(TOKEN) == _closed(_session(TOKEN, key))


def test_a_logout_in_one_process_closes_the_session_in_another_within_a_second(repos: Repositories) -> None:
    session = _session(TOKEN)
    repos.sessions.add(session)
    other = repos.another_process()
    # The other process has the session cached, as a server that served its posts has.
    assert other.sessions.get(TOKEN) == session
    repos.sessions.close(TOKEN, 1_700_000_200.0)
    assert seconds_until_closed(other.sessions, TOKEN) < WITHIN_A_SECOND


def test_a_revocation_in_one_process_closes_the_keys_sessions_in_another_within_a_second(
    repos: Repositories,
) -> None:
    key = _key(1)
    repos.keys.add(key)
    session = _session(TOKEN, key)
    repos.sessions.add(session)
    other = repos.another_process()
    assert other.sessions.get(TOKEN) == session
    repos.keys.revoke(ALICE, key.id, 1_700_000_500.0)
    assert seconds_until_closed(other.sessions, TOKEN) < WITHIN_A_SECOND
    assert other.keys.by_digest(key.digest) is None


def test_the_other_process_reads_open_sessions_right_after_a_closing_elsewhere(repos: Repositories) -> None:
    # A closing elsewhere drops the other process's cache; what it reads again is the same.
    kept = _session(OTHER_TOKEN)
    repos.sessions.add(_session(TOKEN))
    repos.sessions.add(kept)
    other = repos.another_process()
    assert other.sessions.get(OTHER_TOKEN) == kept
    repos.sessions.close(TOKEN, 1_700_000_200.0)
    time.sleep(CLOSED_EVERYWHERE_WITHIN + 0.05)
    assert other.sessions.get(OTHER_TOKEN) == kept
    assert other.sessions.get(TOKEN) == _closed(_session(TOKEN))


def test_keys_made_at_one_time_are_listed_by_id(repos: Repositories) -> None:
    keys = [dataclasses.replace(_key(number), created_at=1_700_000_000.0) for number in (3, 1, 2)]
    for key in keys:
        repos.keys.add(key)
    assert [key.id for key in repos.keys.for_user(ALICE)] == [f"{n:016x}" for n in (1, 2, 3)]


def test_a_key_id_or_digest_in_use_is_refused(repos: Repositories) -> None:
    repos.keys.add(_key(1))
    with pytest.raises(ValueError, match="in use"):
        repos.keys.add(dataclasses.replace(_key(2), id=_key(1).id))
    with pytest.raises(ValueError, match="in use"):
        repos.keys.add(dataclasses.replace(_key(2), digest=_key(1).digest))
    assert repos.keys.for_user(ALICE) == [_key(1)]


def test_closing_an_unknown_session_and_marking_an_unknown_key_used_make_nothing(repos: Repositories) -> None:
    repos.sessions.close(TOKEN, 1_700_000_200.0)
    repos.keys.mark_used("00000000000000ff", 1_700_000_200.0)
    assert repos.sessions.get(TOKEN) is None
    assert repos.sessions.for_user(ALICE) == []
    assert repos.keys.for_user(ALICE) == []
