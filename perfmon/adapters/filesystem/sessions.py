"""Sessions as one JSON record each, named by the session token, and a mark for each closed one."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from perfmon.adapters.filesystem.changes import ChangeMark
from perfmon.adapters.filesystem.files import (
    append_line,
    create_file,
    publish_file,
    read_if_present,
    require_folder_of,
    storage_errors,
    sync_directory,
)
from perfmon.adapters.filesystem.keys import key_is_live
from perfmon.adapters.filesystem.layout import DataDir
from perfmon.adapters.filesystem.series_files import JOURNAL, SESSION_LOCK
from perfmon.adapters.session_cache import SessionCache
from perfmon.domain.errors import InvalidInput, StorageUnavailable
from perfmon.domain.model import Scope, Session, Username, is_canonical_session_token
from perfmon.domain.ports import SessionRepository

# About 300 bytes each: the hot sessions of any real deployment, in a few tens of MB at most.
CACHED_SESSIONS = 65_536
# The length of a canonical UUID string, the only form of token the file lists.
_TOKEN_LENGTH = 36


class FileSessionRepository(SessionRepository):
    """Sessions in `sessions/<token>.json` (`{"user", "created_at", "host", "scope", "key"}`: host a
    string or null, scope "all", "ingest" or "read", key the id of the key that opened it or null; a
    record of an earlier release lacks host, scope and key: a password session without a host), and
    `closed/<token>` for a logged out one (PROTOCOL.md part 4).

    A lookup opens one known path (two for a key's session), a hot one opens nothing: `cache` holds the
    sessions read, and is shared with the FileKeyRepository of the same FileStorage, whose revocations
    drop it; `changes` is the data dir's change mark, which close() moves for the other processes."""

    def __init__(self, data_dir: DataDir, cache: SessionCache[Session], changes: ChangeMark) -> None:
        self._dir = data_dir
        self._cache = cache
        self._changes = changes

    def add(self, session: Session) -> None:
        # The host is data in the record, never part of a path (PROTOCOL.md part 3).
        record = {
            "user": session.user.value,
            "created_at": session.created_at,
            "host": session.host,
            "scope": session.scope.value,
            "key": session.key_id,
        }
        with storage_errors("starting a session"):
            # The folder of its series comes first, so that a committed session always has one to append to.
            folder = self._dir.session_folder(session.token)
            try:
                folder.mkdir(mode=0o700)
            except FileExistsError:
                raise ValueError("session token already in use") from None
            # Its lock and (empty) journal too: made here, at login, they cost the first post nothing.
            # (Appends and reads make them if missing: a folder of an upgraded data dir has neither.)
            for name in (SESSION_LOCK, JOURNAL):
                create_file(self._dir, folder / name, b"")
            if self._dir.fsync:
                sync_directory(self._dir.sessions)
            append_line(self._dir, self._dir.user_sessions(session.user), f"{session.token}\n".encode())
            # The record comes last: its appearance commits the session. Not cached from here: a key's
            # session stored as its key is revoked must be read (closed) from the files (session_cache.py).
            publish_file(self._dir, self._dir.session_record(session.token), json.dumps(record).encode())

    def get(self, token: str) -> Session | None:
        if not is_canonical_session_token(token):
            return None
        return self._cache.get(token, self._read)

    def for_user(self, user: Username) -> list[Session]:
        with storage_errors("listing a user's sessions"):
            content = read_if_present(self._dir.user_sessions(user))
        # The file lists tokens oldest first: reversed, the stable sort puts the later added first on ties.
        lines = reversed((content or b"").decode("ascii", "replace").splitlines())
        # The last 36 characters: a line torn by a power cut gets glued to the front of the next one.
        found = [self.get(line[-_TOKEN_LENGTH:]) for line in lines]
        # Tokens without a record (a crash before it was written) are no sessions; a record that names
        # another user (a file edited by hand) is not this user's.
        mine = [session for session in found if session is not None and session.user == user]
        return sorted(mine, key=lambda session: session.created_at, reverse=True)

    def close(self, token: str, at: float) -> None:
        """Mark the session closed (`closed/<token>`, holding `at`), then move the change mark; a token
        that names no session changes nothing."""
        if not is_canonical_session_token(token):
            return
        with storage_errors("closing a session"):
            if not _exists(self._dir.session_record(token)):
                return
            # The commit: whole or not at all, and it moves closed/'s time with it (changes.py). Closed
            # already, it stays as it was; the mark moves again all the same: cheap, and should the
            # closing process have died before moving it, a retry from a process that still serves the
            # session makes every process read it again.
            with contextlib.suppress(FileExistsError):
                publish_file(self._dir, self._dir.closed_session(token), repr(float(at)).encode("ascii"))
            try:
                # Never the token in the line: it is the session's secret.
                self._changes.move(f"{at!r} logged out")
            finally:
                self._cache.changed()

    def _read(self, token: str) -> Session | None:
        """The session as the files have it now, closed if logged out or if its key is revoked.
        Raises StorageUnavailable for a damaged record (or key record), never a 500's error."""
        with storage_errors("looking up a session"):
            content = read_if_present(self._dir.session_record(token))
            if content is None:
                return None
            record = _well_formed(content)
            if record is None:
                # Never the token in the message: it is the session's secret.
                raise StorageUnavailable("file storage found a session record damaged")
            key_id = record.get("key")
            closed = _exists(self._dir.closed_session(token)) or (
                key_id is not None and not key_is_live(self._dir, key_id)
            )
        # A record of an earlier release has no host (part 3), scope or key (part 4): a password
        # session, without a host.
        return Session(
            token=token,
            user=Username(record["user"]),
            created_at=record["created_at"],
            host=record.get("host"),
            scope=Scope(record.get("scope", Scope.ALL.value)),
            key_id=key_id,
            closed=closed,
        )


def _well_formed(content: bytes) -> dict[str, Any] | None:
    """The record in the content if it has a form that add() writes or an earlier release wrote (no
    host, scope or key), else None: torn by a power cut with fsync off, or edited by hand."""
    try:
        record = json.loads(content)
        if not isinstance(record, dict):
            return None
        Username(record["user"])
        Scope(record.get("scope", Scope.ALL.value))
    except (ValueError, KeyError, TypeError, InvalidInput):
        # ValueError covers a torn record (JSONDecodeError) and one that is no UTF-8 (UnicodeDecodeError).
        return None
    created_at = record.get("created_at")
    fine = (
        isinstance(created_at, int | float)
        and not isinstance(created_at, bool)
        and isinstance(record.get("host"), str | None)
        and isinstance(record.get("key"), str | None)
    )
    return record if fine else None


def _exists(path: Path) -> bool:
    """Whether the file is there; an OSError if its folder is not (an outage, not an open session)."""
    try:
        os.stat(path)
    except FileNotFoundError:
        require_folder_of(path)
        return False
    return True
