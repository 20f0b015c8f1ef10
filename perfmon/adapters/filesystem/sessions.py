"""Sessions as one JSON record each, named by the session token."""

from __future__ import annotations

import functools
import json

from perfmon.adapters.filesystem.files import (
    append_line,
    create_file,
    publish_file,
    read_if_present,
    storage_errors,
    sync_directory,
)
from perfmon.adapters.filesystem.layout import DataDir
from perfmon.adapters.filesystem.series_files import JOURNAL, SESSION_LOCK
from perfmon.domain.model import Session, Username, is_canonical_session_token
from perfmon.domain.ports import SessionRepository

# About 300 bytes each: the hot sessions of any real deployment, in a few tens of MB at most.
_CACHED_SESSIONS = 65_536
# The length of a canonical UUID string, the only form of token the file lists.
_TOKEN_LENGTH = 36


class _NoSuchSession(LookupError):
    """Raised rather than returned so that lru_cache, which never caches exceptions, keeps only hits."""


class FileSessionRepository(SessionRepository):
    """Sessions in `sessions/<token>.json` (`{"user", "created_at", "host"}`, host a string or null; a
    record of an earlier release has no host); a lookup opens one known path, a hot one opens nothing."""

    def __init__(self, data_dir: DataDir) -> None:
        self._dir = data_dir
        # Sessions are never deleted, so a session once read stays true for the life of the process.
        self._load = functools.lru_cache(maxsize=_CACHED_SESSIONS)(self._read)

    def add(self, session: Session) -> None:
        # The host is data in the record, never part of a path (PROTOCOL.md part 3).
        record = {"user": session.user.value, "created_at": session.created_at, "host": session.host}
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
            # The record comes last: its appearance commits the session.
            publish_file(self._dir, self._dir.session_record(session.token), json.dumps(record).encode())

    def get(self, token: str) -> Session | None:
        if not is_canonical_session_token(token):
            return None
        try:
            return self._load(token)
        except _NoSuchSession:
            return None

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

    def _read(self, token: str) -> Session:
        with storage_errors("looking up a session"):
            content = read_if_present(self._dir.session_record(token))
        if content is None:
            raise _NoSuchSession()
        record = json.loads(content)
        # A record of an earlier release has no host: its session has none.
        return Session(
            token=token,
            user=Username(record["user"]),
            created_at=record["created_at"],
            host=record.get("host"),
        )

    def close(self, token: str, at: float) -> None:
        raise NotImplementedError("issue 13 in progress")
