"""What only the file storage promises about access (PROTOCOL.md part 4): an earlier release's sessions,
crashes in the middle of a logout or a revocation, other processes on the same data dir, hostile key
names and ids, and the modes of its files."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmon.adapters.filesystem import FileStorage
from perfmon.domain.model import AccessKey, Scope, Session, User, Username, key_digest
from tests.integration.test_filesystem_storage import NASTY_NAMES
from tests.killed import kill_when_it_says
from tests.storage_kinds import seconds_until_closed

ALICE = Username("alice")
KEY_TOKEN = "0b7e7a2e-5a55-4d1c-9d0e-6f0c3c1f2a11"
PASSWORD_TOKEN = "7d1f0f5e-2c3b-4a9e-8f6d-1a2b3c4d5e6f"
HOSTS_RELEASE_TOKEN = "5a0c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d"
FIRST_RELEASE_TOKEN = "9c8b7a6d-5e4f-4a3b-9c2d-1e0f2a3b4c5d"
# The issue of part 4: a second process refuses a closed session within a second.
WITHIN_A_SECOND = 1.0


def _key(number: int = 1, name: str = "web-1 agent", user: Username = ALICE) -> AccessKey:
    return AccessKey(
        id=f"{number:016x}",
        user=user,
        scope=Scope.INGEST,
        name=name,
        created_at=1_700_000_000.0 + number,
        digest=key_digest("pmk_" + f"{number:A>43}"),
    )


def _storage(root: Path, fsync: bool = False) -> FileStorage:
    """A storage with alice, one key of hers, a session opened with it and one opened with her password
    (made once: opening it again finds them)."""
    storage = FileStorage(root, fsync=fsync)
    if storage.users.get(ALICE) is None:
        storage.users.add(User(ALICE, "argon2id-hash"))
        storage.keys.add(_key())
        storage.sessions.add(_key_session())
        storage.sessions.add(Session(PASSWORD_TOKEN, ALICE, 1_700_000_100.0))
    return storage


def _key_session() -> Session:
    key = _key()
    return Session(KEY_TOKEN, ALICE, 1_700_000_100.5, host="web-1", scope=key.scope, key_id=key.id)


def _closed(session: Session) -> Session:
    return dataclasses.replace(session, closed=True)


def test_a_session_record_of_the_previous_release_reads_as_a_password_session(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path, fsync=False)
    storage.sessions.add(Session(HOSTS_RELEASE_TOKEN, ALICE, 1.0, host="web-1"))
    storage.sessions.add(Session(FIRST_RELEASE_TOKEN, ALICE, 2.0))
    # What the releases before keys wrote: no "scope" nor "key" (and before hosts, no "host" either).
    (tmp_path / "sessions" / f"{HOSTS_RELEASE_TOKEN}.json").write_text(
        json.dumps({"user": "alice", "created_at": 1.0, "host": "web-1"})
    )
    (tmp_path / "sessions" / f"{FIRST_RELEASE_TOKEN}.json").write_text(
        json.dumps({"user": "alice", "created_at": 2.0})
    )

    reopened = FileStorage(tmp_path, fsync=False)

    with_host = Session(HOSTS_RELEASE_TOKEN, ALICE, 1.0, "web-1", scope=Scope.ALL, key_id=None, closed=False)
    without_host = Session(FIRST_RELEASE_TOKEN, ALICE, 2.0, None, scope=Scope.ALL, key_id=None, closed=False)
    assert reopened.sessions.get(HOSTS_RELEASE_TOKEN) == with_host
    assert reopened.sessions.for_user(ALICE) == [without_host, with_host]
    # It can be logged out like any other.
    reopened.sessions.close(FIRST_RELEASE_TOKEN, 3.0)
    assert FileStorage(tmp_path, fsync=False).sessions.get(FIRST_RELEASE_TOKEN) == _closed(without_host)


def test_a_key_and_a_closed_session_survive_a_restart_as_written(tmp_path: Path) -> None:
    storage = _storage(tmp_path, fsync=True)
    storage.keys.mark_used(_key().id, 1_700_000_200.125)
    storage.sessions.close(PASSWORD_TOKEN, 1_700_000_300.0)

    reopened = FileStorage(tmp_path, fsync=True)

    used = dataclasses.replace(_key(), last_used=1_700_000_200.125)
    assert reopened.keys.for_user(ALICE) == [used]
    assert reopened.keys.by_digest(_key().digest) == used
    assert reopened.sessions.get(KEY_TOKEN) == _key_session()
    assert reopened.sessions.get(PASSWORD_TOKEN) == _closed(Session(PASSWORD_TOKEN, ALICE, 1_700_000_100.0))
    # What an administrator finds: the record holds the digest, never a key; the mark holds no token.
    record = json.loads((tmp_path / "keys" / f"{_key().id}.json").read_text())
    assert record == {
        "user": "alice",
        "scope": "ingest",
        "name": "web-1 agent",
        "created_at": _key().created_at,
        "digest": _key().digest,
        "revoked_at": None,
    }
    assert (tmp_path / "keys" / "used" / _key().id).read_text() == "1700000200.125"
    changes = (tmp_path / "access.changes").read_text()
    assert changes == "1700000300.0 logged out\n"


# The child does a logout or a revocation through the real storage and stops where argv[3] says, with
# the data dir as the crash leaves it: it says so, and waits to be killed.
_CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from perfmon.adapters.filesystem import FileStorage, changes
    from perfmon.domain.model import Username

    def stop():
        print("stopped", flush=True)
        time.sleep(60)

    root, token, where = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    storage = FileStorage(root, fsync=True)
    real_replace, real_link = os.replace, os.link

    def replace(source, target):
        if where == "before the record":
            stop()
        real_replace(source, target)
        if where == "after the record":
            stop()

    def link(source, target):
        if where == "before the mark" and Path(target).parent == root / "closed":
            stop()
        real_link(source, target)

    os.replace, os.link = replace, link
    if where == "before the line":
        changes.ChangeMark.move = lambda *_: stop()
    if sys.argv[4] == "revoke":
        storage.keys.revoke(Username("alice"), "0000000000000001", 1_700_000_500.0)
    else:
        storage.sessions.close(token, 1_700_000_500.0)
    print("not stopped", flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("where", "revoked"),
    [("before the record", False), ("after the record", True), ("before the line", True)],
)
def test_a_revocation_killed_midway_leaves_the_key_live_or_revoked_with_its_sessions_closed(
    tmp_path: Path, where: str, revoked: bool
) -> None:
    _storage(tmp_path, fsync=True)
    # Another server process that has served the key's session keeps it in its cache.
    other = FileStorage(tmp_path, fsync=True)
    assert other.sessions.get(KEY_TOKEN) == _key_session()

    kill_when_it_says(_CHILD, [str(tmp_path), KEY_TOKEN, where, "revoke"], "stopped")
    killed_at = time.monotonic()

    restarted = FileStorage(tmp_path, fsync=True)
    password_session = Session(PASSWORD_TOKEN, ALICE, 1_700_000_100.0)
    if revoked:
        # Revoked: it opens nothing, is listed nowhere, and its session is closed, in a process started
        # after the crash at once and in the one that had it cached within a second.
        assert restarted.keys.by_digest(_key().digest) is None
        assert restarted.keys.for_user(ALICE) == []
        assert restarted.sessions.get(KEY_TOKEN) == _closed(_key_session())
        seconds_until_closed(other.sessions, KEY_TOKEN)
        assert time.monotonic() - killed_at < WITHIN_A_SECOND
        assert other.keys.by_digest(_key().digest) is None
        assert not restarted.keys.revoke(ALICE, _key().id, 1_700_000_600.0)
    else:
        # Live: it opens sessions and its session works; revoking it again does it all.
        assert restarted.keys.by_digest(_key().digest) == _key()
        assert restarted.keys.for_user(ALICE) == [_key()]
        assert restarted.sessions.get(KEY_TOKEN) == _key_session()
        assert restarted.keys.revoke(ALICE, _key().id, 1_700_000_600.0)
        assert restarted.sessions.get(KEY_TOKEN) == _closed(_key_session())
        assert seconds_until_closed(other.sessions, KEY_TOKEN) < WITHIN_A_SECOND
    assert restarted.sessions.get(PASSWORD_TOKEN) == password_session
    assert other.sessions.get(PASSWORD_TOKEN) == password_session


@pytest.mark.slow
@pytest.mark.parametrize(("where", "closed"), [("before the mark", False), ("before the line", True)])
def test_a_logout_killed_midway_leaves_the_session_open_or_closed_everywhere(
    tmp_path: Path, where: str, closed: bool
) -> None:
    _storage(tmp_path, fsync=True)
    other = FileStorage(tmp_path, fsync=True)
    password_session = Session(PASSWORD_TOKEN, ALICE, 1_700_000_100.0)
    assert other.sessions.get(PASSWORD_TOKEN) == password_session

    kill_when_it_says(_CHILD, [str(tmp_path), PASSWORD_TOKEN, where, "close"], "stopped")
    killed_at = time.monotonic()

    restarted = FileStorage(tmp_path, fsync=True)
    if closed:
        assert restarted.sessions.get(PASSWORD_TOKEN) == _closed(password_session)
        seconds_until_closed(other.sessions, PASSWORD_TOKEN)
        assert time.monotonic() - killed_at < WITHIN_A_SECOND
    else:
        assert restarted.sessions.get(PASSWORD_TOKEN) == password_session
        time.sleep(0.6)
        assert other.sessions.get(PASSWORD_TOKEN) == password_session
    assert restarted.sessions.get(KEY_TOKEN) == _key_session()


def test_a_key_indexed_but_not_recorded_by_a_crash_is_no_key(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path, fsync=False)
    storage.users.add(User(ALICE, "argon2id-hash"))
    storage.keys.add(_key())
    # What a crash between the index and the record leaves: the id listed, the index, no record.
    (tmp_path / "keys" / f"{_key().id}.json").unlink()

    reopened = FileStorage(tmp_path, fsync=False)

    assert reopened.keys.by_digest(_key().digest) is None
    assert reopened.keys.for_user(ALICE) == []
    assert not reopened.keys.revoke(ALICE, _key().id, 1_700_000_500.0)
    # A session that names a key without a record is closed (it cannot have been opened with it).
    reopened.sessions.add(_key_session())
    assert reopened.sessions.get(KEY_TOKEN) == _closed(_key_session())


def test_an_index_is_only_believed_when_its_record_has_the_same_digest(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    other = _key(2)
    storage.keys.add(other)
    # An index file that names another key (edited by hand, or left by a crash) finds nothing.
    (tmp_path / "keys" / f"{other.digest}.id").write_text(_key().id)
    assert FileStorage(tmp_path, fsync=False).keys.by_digest(other.digest) is None


_OTHER_PROCESS = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from perfmon.adapters.filesystem import FileStorage
    from perfmon.domain.model import Username

    storage = FileStorage(Path(sys.argv[1]), fsync=True)
    if sys.argv[2] == "revoke":
        assert storage.keys.revoke(Username("alice"), "0000000000000001", 1_700_000_500.0)
    else:
        storage.sessions.close(sys.argv[3], 1_700_000_500.0)
    print("done", flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(("action", "token"), [("revoke", KEY_TOKEN), ("close", PASSWORD_TOKEN)])
def test_a_closing_by_another_process_is_seen_within_a_second(
    tmp_path: Path, action: str, token: str
) -> None:
    storage = _storage(tmp_path, fsync=True)
    before = storage.sessions.get(token)
    assert before is not None and not before.closed

    done = subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS, str(tmp_path), action, token],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    finished = time.monotonic()

    assert done.stdout == "done\n"
    seconds_until_closed(storage.sessions, token)
    assert time.monotonic() - finished < WITHIN_A_SECOND
    assert storage.sessions.get(token) == _closed(before)


def test_uses_racing_a_revocation_never_bring_the_key_back_nor_lose_the_latest(tmp_path: Path) -> None:
    _storage(tmp_path)
    key, writers, uses = _key(), 4, 100
    start = threading.Barrier(writers)
    revoked: list[bool] = []

    def use(writer: int) -> None:
        # A process of its own each, marking its share of the times in a shuffled order: the latest time
        # lands among the others' earlier ones, which must not overwrite it.
        storage = FileStorage(tmp_path, fsync=False)
        numbers = list(range(writer, writers * uses, writers))
        random.Random(writer).shuffle(numbers)
        start.wait()
        for done, number in enumerate(numbers):
            storage.keys.mark_used(key.id, 1_700_000_000.0 + number)
            if writer == 0 and done == uses // 2:
                revoked.append(storage.keys.revoke(ALICE, key.id, 1_700_000_500.0))

    threads = [threading.Thread(target=use, args=(writer,)) for writer in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert revoked == [True]
    reopened = FileStorage(tmp_path, fsync=False)
    assert reopened.keys.by_digest(key.digest) is None
    assert reopened.keys.for_user(ALICE) == []
    assert reopened.sessions.get(KEY_TOKEN) == _closed(_key_session())
    assert (tmp_path / "keys" / "used" / key.id).read_text() == repr(1_700_000_000.0 + writers * uses - 1)


@pytest.mark.parametrize("name", NASTY_NAMES)
def test_a_hostile_key_name_is_data_in_the_record(tmp_path: Path, name: str) -> None:
    storage = FileStorage(tmp_path / "data", fsync=False)
    key = _key(name=name, user=Username(name))
    storage.keys.add(key)

    assert FileStorage(tmp_path / "data", fsync=False).keys.for_user(Username(name)) == [key]
    # Files are named by the key's id and digest, and by the user's key: nothing else, nowhere else.
    assert sorted(path.name for path in (tmp_path / "data" / "keys").iterdir()) == sorted(
        [f"{key.id}.json", f"{key.digest}.id", "used"]
    )
    assert [path.name for path in tmp_path.iterdir()] == ["data"]


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data dir for every example of a property (hypothesis runs a test many times per fixture)."""
    root = tmp_path_factory.mktemp("data")
    _storage(root)
    return root


def _files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.parent.name != "tmp")


_KEY_FILE = re.compile(r"[0-9a-f]{16}\.json|[0-9a-f]{64}\.id|used")
_NAMES = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=128)
_new_ids = iter(range(1_000, 1 << 62))


@settings(deadline=None, database=None)
@given(name=_NAMES)
def test_any_key_name_round_trips_and_names_no_file(shared_root: Path, name: str) -> None:
    storage = FileStorage(shared_root, fsync=False)
    key = _key(next(_new_ids), name=name)
    storage.keys.add(key)

    assert FileStorage(shared_root, fsync=False).keys.by_digest(key.digest) == key
    assert key in storage.keys.for_user(ALICE)
    # Every file of keys/ is named by an id or a digest, whatever the names of the keys.
    names = os.listdir(shared_root / "keys")
    assert {f"{key.id}.json", f"{key.digest}.id"} <= set(names)
    assert all(_KEY_FILE.fullmatch(name) for name in names)


@settings(deadline=None, database=None)
@given(
    text=st.text() | st.sampled_from(["../../etc/passwd", "0" * 15 + "/", "A" * 16, "0" * 64 + "/..", "."])
)
def test_a_hostile_key_id_or_digest_finds_nothing_and_writes_nothing(shared_root: Path, text: str) -> None:
    storage = FileStorage(shared_root, fsync=False)
    before = _files(shared_root)

    assert storage.keys.by_digest(text) is None
    assert not storage.keys.revoke(ALICE, text, 1_700_000_500.0)
    storage.keys.mark_used(text, 1_700_000_500.0)

    assert _files(shared_root) == before
    assert storage.keys.by_digest(_key().digest) == _key()


@pytest.fixture
def no_umask() -> Iterator[None]:
    """Let every bit a file is made with through, so that its mode is the storage's choice alone."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("no_umask")
def test_keys_and_closings_are_the_servers_alone(tmp_path: Path) -> None:
    storage = _storage(tmp_path / "data")
    storage.keys.mark_used(_key().id, 1_700_000_200.0)
    storage.keys.add(_key(2))
    storage.keys.revoke(ALICE, _key(2).id, 1_700_000_300.0)
    storage.sessions.close(PASSWORD_TOKEN, 1_700_000_400.0)

    data = tmp_path / "data"
    made = [
        data / "access.changes",
        *(data / "users").glob("*.keys"),
        *(data / "closed").iterdir(),
        *(path for path in (data / "keys").rglob("*") if path.is_file()),
    ]
    assert len(made) == 7  # the mark, alice's list, a closing, two records, an index, a use
    assert {path: stat.S_IMODE(path.stat().st_mode) for path in made} == dict.fromkeys(made, 0o600)
    folders = [data / "keys", data / "keys" / "used", data / "closed"]
    assert {path: stat.S_IMODE(path.stat().st_mode) for path in folders} == dict.fromkeys(folders, 0o700)


def test_a_closing_whose_note_cannot_be_written_is_still_done_and_seen_everywhere(tmp_path: Path) -> None:
    # access.changes cannot be appended to (here: a folder stands in its place, as a full disk would
    # refuse the line): the logout and the revocation are committed, so neither is reported failed.
    storage, other = _storage(tmp_path), _storage(tmp_path)
    password_session = Session(PASSWORD_TOKEN, ALICE, 1_700_000_100.0)
    assert other.sessions.get(PASSWORD_TOKEN) == password_session
    assert other.sessions.get(KEY_TOKEN) == _key_session()
    (tmp_path / "access.changes").mkdir()
    storage.sessions.close(PASSWORD_TOKEN, 1_700_000_200.0)
    assert storage.keys.revoke(ALICE, _key().id, 1_700_000_300.0)
    assert storage.sessions.get(PASSWORD_TOKEN) == _closed(password_session)
    assert seconds_until_closed(other.sessions, PASSWORD_TOKEN) < WITHIN_A_SECOND
    assert seconds_until_closed(other.sessions, KEY_TOKEN) < WITHIN_A_SECOND
