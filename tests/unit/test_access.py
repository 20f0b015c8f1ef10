"""The access rules of PROTOCOL.md part 4 in the domain: scopes, logout, keys, logins with a key."""

from __future__ import annotations

import itertools

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
from perfmon.domain.access import KEY_USE_RESOLUTION, Access, KeyUsage, SessionGate
from perfmon.domain.accounts import Accounts
from perfmon.domain.errors import (
    Forbidden,
    InvalidCredentials,
    InvalidInput,
    KeyNotFound,
    SessionNotFound,
    StorageUnavailable,
    TooManyAttempts,
    UnknownSession,
)
from perfmon.domain.history import History
from perfmon.domain.login_limits import LoginLimits
from perfmon.domain.model import (
    EVERYTHING,
    AccessKey,
    CpuSample,
    Permission,
    Scope,
    Session,
    Username,
    is_key_text,
    is_public_session_id,
    key_digest,
    parse_session_token,
    public_session_id,
)
from tests.fakes import FastHasher, FixedClock, SequentialKeys, SequentialTokens

CLIENT = "192.0.2.7"


class World:
    """The domain's services over one in-memory storage, with a clock the test moves."""

    def __init__(self) -> None:
        self.clock = FixedClock()
        self.sessions = InMemorySessionRepository()
        self.keys = InMemoryKeyRepository(self.sessions)
        self.samples = InMemorySampleRepository(self.sessions)
        self.usage = KeyUsage(self.keys, self.clock)
        self.gate = SessionGate(self.sessions, self.usage)
        throttle = LimitsLoginThrottle(MemoryStorage(), self.clock, LoginLimits(2, 5, 900))
        self.accounts = Accounts(
            InMemoryUserRepository(self.sessions),
            self.sessions,
            FastHasher(),
            SequentialTokens(),
            self.clock,
            throttle,
            self.keys,
            self.usage,
        )
        self.access = Access(self.gate, self.sessions, self.keys, SequentialKeys(), self.clock)
        self.history = History(self.gate, self.sessions, self.samples, self.clock)
        self.password_session = self.accounts.register("alice", "pw", host="web-1").token

    def key(self, scope: str, name: str = "a key") -> tuple[AccessKey, str]:
        return self.access.make_key(self.password_session, scope, name)

    def key_session(self, scope: str, host: str | None = "web-1") -> str:
        _, secret = self.key(scope)
        return self.accounts.log_in_with_key(secret, CLIENT, host).token


@pytest.fixture
def world() -> World:
    return World()


# What each scope may do: the whole table (PROTOCOL.md part 4).
ALLOWED = {
    Scope.ALL: set(Permission),
    Scope.INGEST: {Permission.POST, Permission.LOG_OUT},
    Scope.READ: {Permission.READ, Permission.LOG_OUT},
}


@pytest.mark.parametrize(("scope", "permission"), list(itertools.product(Scope, Permission)))
def test_each_scope_allows_exactly_what_part_4_says(scope: Scope, permission: Permission) -> None:
    assert scope.allows(permission) == (permission in ALLOWED[scope])


def test_an_ingest_session_posts_and_reads_nothing(world: World) -> None:
    token = world.key_session("ingest")
    world.history.record(token, [CpuSample(10.0, 1.0).sample()])
    for read in (
        lambda: world.history.samples(token, EVERYTHING),
        lambda: world.history.sessions_of_user(token),
        lambda: world.history.hosts(token),
        lambda: world.history.buckets(token, EVERYTHING, 60.0),
        lambda: world.access.keys(token),
    ):
        with pytest.raises(Forbidden):
            read()
    # What it posted is the user's: the password session reads it on the host.
    assert list(world.history.samples(world.password_session, EVERYTHING, host="web-1").values) == [10.0]


@pytest.mark.parametrize(
    ("of_session", "host"), [("not-a-uuid", None), (None, "tab\there"), ("s-" + "0" * 32, "web-1")]
)
@pytest.mark.parametrize("caller", ["unknown session", "ingest session"])
def test_a_malformed_session_or_host_read_is_invalid_input_before_the_session_is_looked_at(
    world: World, caller: str, of_session: str | None, host: str | None
) -> None:
    # PROTOCOL.md part 4 lists 400 before 401 and 403, as a bad step or metric already is.
    token = (
        "6b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d" if caller == "unknown session" else world.key_session("ingest")
    )
    with pytest.raises(InvalidInput):
        world.history.samples(token, EVERYTHING, of_session=of_session, host=host)


def test_a_read_session_reads_everything_and_posts_nothing(world: World) -> None:
    world.history.record(world.password_session, [CpuSample(20.0, 2.0).sample()])
    token = world.key_session("read", host=None)
    assert list(world.history.samples(token, EVERYTHING, of_session=world.password_session).values) == [20.0]
    assert [host.name for host in world.history.hosts(token)] == ["web-1"]
    assert len(world.history.sessions_of_user(token)) == 2
    with pytest.raises(Forbidden):
        world.history.record(token, [CpuSample(1.0, 3.0).sample()])


@pytest.mark.parametrize("scope", ["ingest", "read"])
def test_a_keys_session_cannot_make_list_or_revoke_keys(world: World, scope: str) -> None:
    key, _ = world.key("ingest")
    token = world.key_session(scope)
    with pytest.raises(Forbidden):
        world.access.make_key(token, "read", "another")
    with pytest.raises(Forbidden):
        world.access.keys(token)
    with pytest.raises(Forbidden):
        world.access.revoke_key(token, key.id)
    assert key.id in [known.id for known in world.access.keys(world.password_session)]


def test_a_made_key_is_shown_once_and_kept_as_its_digest_only(world: World) -> None:
    key, secret = world.key("ingest", "web-1 agent")
    assert is_key_text(secret)
    assert key.digest == key_digest(secret)
    assert secret not in repr(key) and key.digest not in repr(key)
    (listed,) = world.access.keys(world.password_session)
    assert listed == key
    assert (
        listed.scope is Scope.INGEST and listed.name == "web-1 agent" and listed.created_at == world.clock.now
    )


@pytest.mark.parametrize(
    ("scope", "name", "field"),
    [
        ("all", "x", "scope"),
        ("INGEST", "x", "scope"),
        (None, "x", "scope"),
        ("read", "", "name"),
        ("read", "x" * 129, "name"),
        ("read", "tab\there", "name"),
        ("read", 7, "name"),
        ("read", None, "name"),
    ],
)
def test_a_bad_scope_or_name_is_refused_naming_the_field_and_nothing_is_made(
    world: World, scope: object, name: object, field: str
) -> None:
    with pytest.raises(InvalidInput, match=f"^{field} "):
        world.access.make_key(world.password_session, scope, name)
    assert world.access.keys(world.password_session) == []


@pytest.mark.parametrize("caller", ["unknown session", "key session"])
def test_a_bad_scope_or_name_is_refused_before_the_session_is_looked_at(world: World, caller: str) -> None:
    # PROTOCOL.md part 4 lists 400 before 401 and 403: a malformed request is malformed whoever sends it.
    token = (
        "6b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d" if caller == "unknown session" else world.key_session("read")
    )
    with pytest.raises(InvalidInput, match="^scope "):
        world.access.make_key(token, "all", "x")
    with pytest.raises(InvalidInput, match="^name "):
        world.access.make_key(token, "read", "")


@given(st.text(min_size=1, max_size=128).filter(lambda n: all(c.isprintable() or c == " " for c in n)))
def test_any_printable_name_of_1_to_128_characters_is_kept_as_given(name: str) -> None:
    world = World()
    key, _ = world.key("read", name)
    assert [known.name for known in world.access.keys(world.password_session)] == [name]
    assert key.name == name


def test_logging_in_with_a_key_opens_a_session_of_its_scope_user_and_host(world: World) -> None:
    key, secret = world.key("read")
    session = world.accounts.log_in_with_key(secret, CLIENT, "wall")
    assert (session.user, session.scope, session.key_id, session.host) == (
        Username("alice"),
        Scope.READ,
        key.id,
        "wall",
    )
    assert world.sessions.get(session.token) == session


@pytest.mark.parametrize("text", ["", "pmk_", "pmk_" + "A" * 42, "pmk_" + "A" * 44, "pmk_" + "*" * 43, "pw"])
def test_a_text_that_is_no_key_is_wrong_credentials(world: World, text: str) -> None:
    with pytest.raises(InvalidCredentials):
        world.accounts.log_in_with_key(text, CLIENT)


def test_an_unknown_or_revoked_key_is_wrong_credentials(world: World) -> None:
    key, secret = world.key("ingest")
    with pytest.raises(InvalidCredentials):
        world.accounts.log_in_with_key("pmk_" + "Z" * 43, CLIENT)
    world.access.revoke_key(world.password_session, key.id)
    with pytest.raises(InvalidCredentials):
        world.accounts.log_in_with_key(secret, CLIENT)


def test_failed_key_logins_count_against_the_address_and_block_its_password_logins(world: World) -> None:
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            world.accounts.log_in_with_key("pmk_" + "Z" * 43, CLIENT)
    with pytest.raises(TooManyAttempts):
        world.accounts.log_in("alice", "pw", CLIENT)
    _, secret = world.key("ingest")
    with pytest.raises(TooManyAttempts):
        world.accounts.log_in_with_key(secret, CLIENT)
    # Another address is not blocked.
    world.accounts.log_in_with_key(secret, "198.51.100.1")


def test_revoking_a_key_closes_its_sessions_and_only_them(world: World) -> None:
    key, secret = world.key("ingest")
    revoked = world.accounts.log_in_with_key(secret, CLIENT).token
    kept = world.key_session("read")
    world.access.revoke_key(world.password_session, key.id)
    with pytest.raises(UnknownSession):
        world.history.record(revoked, [CpuSample(1.0, 1.0).sample()])
    world.history.hosts(kept)
    assert [known.scope for known in world.access.keys(world.password_session)] == [Scope.READ]


def test_revoking_an_unknown_malformed_revoked_or_other_users_key_is_key_not_found(world: World) -> None:
    key, _ = world.key("ingest")
    bob = world.accounts.register("bob", "pw").token
    bobs_key, _ = world.access.make_key(bob, "read", "bob's")
    for key_id in (bobs_key.id, "00000000000000ff", "../../etc/passwd", "", "ABCDEF0123456789", key.id + " "):
        with pytest.raises(KeyNotFound):
            world.access.revoke_key(world.password_session, key_id)
    world.access.revoke_key(world.password_session, key.id)
    with pytest.raises(KeyNotFound):
        world.access.revoke_key(world.password_session, key.id)
    assert world.access.keys(bob) == [bobs_key]


def test_logging_out_closes_the_session_and_keeps_its_samples(world: World) -> None:
    world.history.record(world.password_session, [CpuSample(30.0, 5.0).sample()])
    other = world.accounts.log_in("alice", "pw", CLIENT).token
    world.access.log_out(world.password_session)
    with pytest.raises(UnknownSession):
        world.history.samples(world.password_session, EVERYTHING)
    with pytest.raises(UnknownSession):
        world.access.log_out(world.password_session)
    assert list(world.history.samples(other, EVERYTHING, of_session=world.password_session).values) == [30.0]
    assert list(world.history.samples(other, EVERYTHING, host="web-1").values) == [30.0]


@pytest.mark.parametrize("scope", ["ingest", "read"])
def test_a_keys_session_may_log_out(world: World, scope: str) -> None:
    token = world.key_session(scope)
    world.access.log_out(token)
    with pytest.raises(UnknownSession):
        world.access.log_out(token)


def test_last_used_is_the_login_then_moves_with_use_at_most_once_a_minute(world: World) -> None:
    key, secret = world.key("ingest")
    assert world.access.keys(world.password_session)[0].last_used is None
    world.clock.now += 10
    token = world.accounts.log_in_with_key(secret, CLIENT).token
    login = world.clock.now
    assert world.access.keys(world.password_session)[0].last_used == login
    world.clock.now += KEY_USE_RESOLUTION - 1
    world.history.record(token, [CpuSample(1.0, 1.0).sample()])
    assert world.access.keys(world.password_session)[0].last_used == login
    world.clock.now += 1
    world.history.record(token, [CpuSample(1.0, 2.0).sample()])
    assert world.access.keys(world.password_session)[0].last_used == login + KEY_USE_RESOLUTION
    assert key.id == world.access.keys(world.password_session)[0].id


class FullDiskKeys(InMemoryKeyRepository):
    """Keys on a disk that refuses writes of last_used while `full` is True."""

    full = True

    def mark_used(self, key_id: str, at: float) -> None:
        if self.full:
            raise StorageUnavailable("the disk is full")
        super().mark_used(key_id, at)


def test_a_last_used_that_cannot_be_written_fails_no_request_and_is_written_at_the_next_use() -> None:
    clock, sessions = FixedClock(), InMemorySessionRepository()
    keys = FullDiskKeys(sessions)
    history = History(
        SessionGate(sessions, KeyUsage(keys, clock)), sessions, InMemorySampleRepository(sessions), clock
    )
    key = AccessKey(
        "00000000000000a1", Username("alice"), Scope.READ, "wall", clock.now, key_digest("pmk_" + "A" * 43)
    )
    keys.add(key)
    token = "6b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    sessions.add(Session(token, key.user, clock.now, scope=key.scope, key_id=key.id))
    assert history.hosts(token) == []
    assert keys.for_user(key.user)[0].last_used is None
    # The failed write is not counted as written: the next use, within the minute, writes it.
    keys.full = False
    clock.now += 1
    assert history.hosts(token) == []
    assert keys.for_user(key.user)[0].last_used == clock.now


def test_a_password_session_does_everything(world: World) -> None:
    token = world.password_session
    world.history.record(token, [CpuSample(1.0, 1.0).sample()])
    world.history.hosts(token)
    key, _ = world.access.make_key(token, "read", "x")
    world.access.revoke_key(token, key.id)
    world.access.log_out(token)


def test_a_read_session_is_told_public_session_ids_never_tokens_and_reads_by_them(world: World) -> None:
    world.history.record(world.password_session, [CpuSample(40.0, 7.0).sample()])
    token = world.key_session("read")
    listed = world.history.sessions_of_user(token)
    references = [overview.reference for overview in listed]
    assert all(is_public_session_id(reference) for reference in references)
    assert world.password_session not in references and token not in references
    password_entry = next(o for o in listed if o.session.token == world.password_session)
    # The public id reads the session, and is no hash: it opens nothing.
    assert list(world.history.samples(token, EVERYTHING, of_session=password_entry.reference).values) == [
        40.0
    ]
    with pytest.raises(InvalidInput):
        world.history.record(password_entry.reference, [CpuSample(1.0, 8.0).sample()])


def test_a_password_session_is_told_tokens_as_in_part_2_and_may_use_public_ids(world: World) -> None:
    world.history.record(world.password_session, [CpuSample(50.0, 9.0).sample()])
    listed = world.history.sessions_of_user(world.password_session)
    assert [overview.reference for overview in listed] == [overview.session.token for overview in listed]
    public = public_session_id(world.password_session)
    assert list(world.history.samples(world.password_session, EVERYTHING, of_session=public).values) == [50.0]


def test_another_users_session_by_public_id_is_not_found(world: World) -> None:
    bob = world.accounts.register("bob", "pw").token
    token = world.key_session("read")
    with pytest.raises(SessionNotFound):
        world.history.samples(token, EVERYTHING, of_session=public_session_id(bob))
    with pytest.raises(SessionNotFound):
        world.history.samples(token, EVERYTHING, of_session="s-" + "0" * 32)


@given(st.uuids(version=4))
def test_a_public_session_id_is_never_a_session_hash(token: object) -> None:
    public = public_session_id(str(token))
    assert is_public_session_id(public)
    with pytest.raises(InvalidInput):
        parse_session_token(public)
