"""Access keys as files (PROTOCOL.md part 4): a record per key, an index file per digest for logins.

    keys/<id>.json       the record, `{"user", "scope", "name", "created_at", "digest", "revoked_at"}`
                         (revoked_at null while live); its appearance commits a new key, its rewrite with
                         revoked_at (write aside, then rename) commits a revocation
    keys/<digest>.id     the id of the key with that digest: made before the record, removed once the
                         record is marked revoked; only a hint, as the record decides (its digest must
                         match, it must be live)
    keys/used/<id>       the key's last_used, a float in repr(); rewritten whole, never smaller; apart
                         from the record so that a use racing a revocation cannot bring the key back
    users/<key>.keys     the ids of the user's keys, one per line, in the order they were made

Ids and digests are checked (model.is_key_id, 64 lowercase hex digits) before they become paths. A
revocation is only ever a mark in the record: a session opened with a key reads closed once its key's
record is revoked or missing (key_is_live). A damaged record (torn, hand-edited) is a StorageUnavailable
wherever it is read: never a key, never a reason to answer 500.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from perfmon.adapters.filesystem.changes import ChangeMark
from perfmon.adapters.filesystem.files import (
    append_line,
    publish_file,
    read_if_present,
    replace_file,
    storage_errors,
)
from perfmon.adapters.filesystem.layout import DataDir, is_digest
from perfmon.adapters.session_cache import SessionCache
from perfmon.domain.errors import InvalidInput, StorageUnavailable
from perfmon.domain.model import (
    AccessKey,
    Scope,
    Session,
    Username,
    check_key_name,
    check_key_scope,
    is_key_id,
)
from perfmon.domain.ports import KeyRepository

# The length of a key id, the only thing the user's list holds.
_ID_LENGTH = 16


class FileKeyRepository(KeyRepository):
    """Keys under `keys/` (see the module docstring). Revoking one moves the change mark and drops
    `cache`, the sessions' cache of the same FileStorage, so that its sessions read closed at once here
    and within CLOSED_EVERYWHERE_WITHIN seconds in every other process."""

    def __init__(self, data_dir: DataDir, cache: SessionCache[Session], changes: ChangeMark) -> None:
        self._dir = data_dir
        self._cache = cache
        self._changes = changes

    def add(self, key: AccessKey) -> None:
        """Raises ValueError for an id or digest that is malformed or already in use."""
        if not (is_key_id(key.id) and is_digest(key.digest)):
            raise ValueError("a key needs a key id and a SHA-256 digest in hex")
        record = {
            "user": key.user.value,
            "scope": key.scope.value,
            "name": key.name,
            "created_at": key.created_at,
            "digest": key.digest,
            "revoked_at": None,
        }
        content = json.dumps(record, ensure_ascii=False).encode("utf-8")
        with storage_errors("storing a key"):
            # Listed first and indexed next, the record last: until it appears there is no key, and a
            # crash before leaves only an id and an index that lead to nothing (for_user and by_digest
            # read the record).
            append_line(self._dir, self._dir.user_keys(key.user), f"{key.id}\n".encode("ascii"))
            try:
                publish_file(self._dir, self._dir.key_index(key.digest), key.id.encode("ascii"))
                publish_file(self._dir, self._dir.key_record(key.id), content)
            except FileExistsError:
                raise ValueError("key id or digest already in use") from None

    def by_digest(self, digest: str) -> AccessKey | None:
        if not is_digest(digest):
            return None
        with storage_errors("looking up a key"):
            key_id = (read_if_present(self._dir.key_index(digest)) or b"").decode("ascii", "replace")
            if not is_key_id(key_id):
                return None
            key = self._live(key_id)
        # An index is only a hint: the record it names must hold the same digest.
        return key if key is not None and key.digest == digest else None

    def for_user(self, user: Username) -> list[AccessKey]:
        with storage_errors("listing a user's keys"):
            content = read_if_present(self._dir.user_keys(user)) or b""
            # The last 16 characters: a line torn by a power cut gets glued to the front of the next one.
            ids = (line[-_ID_LENGTH:] for line in content.decode("ascii", "replace").splitlines())
            found = [self._live(key_id) for key_id in dict.fromkeys(ids) if is_key_id(key_id)]
        # A record that names another user (a file edited by hand) is not this user's key.
        mine = [key for key in found if key is not None and key.user == user]
        # Oldest first, equal times by id: the order every storage gives (ports.KeyRepository.for_user).
        return sorted(mine, key=lambda key: (key.created_at, key.id))

    def revoke(self, user: Username, key_id: str, at: float) -> bool:
        if not is_key_id(key_id):
            return False
        with storage_errors("revoking a key"), _locked(self._dir.keys):
            # Under the lock, so that of two revocations racing in any processes exactly one is true.
            record = _record(self._dir, key_id)
            if record is None or record["revoked_at"] is not None or record["user"] != user.value:
                return False
            record["revoked_at"] = at
            content = json.dumps(record, ensure_ascii=False).encode("utf-8")
            try:
                # The commit: from this rename on the key opens nothing and its sessions read closed.
                replace_file(self._dir, self._dir.key_record(key_id), content)
                # Tidying: a login's lookup of the key now ends at the index. (Left behind by a crash,
                # it leads to a revoked record, which is no key.)
                if is_digest(record["digest"]):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self._dir.key_index(record["digest"]))
                self._changes.move(f"{at!r} revoked {key_id}")
            finally:
                # Whether or not the line could be appended, the revocation may be stored: this process
                # reads its sessions again from the record.
                self._cache.changed()
        return True

    def mark_used(self, key_id: str, at: float) -> None:
        if not is_key_id(key_id):
            return
        path = self._dir.key_used(key_id)
        with storage_errors("marking a key used"):
            # A key that never was gets no file (a revoked one's use does not matter, and is harmless).
            if _record(self._dir, key_id) is None:
                return
            # Under the lock, so that two processes' read-compare-write cannot lose the later time.
            with _locked(self._dir.key_use):
                used = _last_used(path)
                if used is None or used < at:
                    replace_file(self._dir, path, repr(float(at)).encode("ascii"))

    def _live(self, key_id: str) -> AccessKey | None:
        """The key of that id unless it is revoked or has no record (call within storage_errors)."""
        record = _record(self._dir, key_id)
        if record is None or record["revoked_at"] is not None:
            return None
        return AccessKey(
            id=key_id,
            user=Username(record["user"]),
            scope=Scope(record["scope"]),
            name=record["name"],
            created_at=record["created_at"],
            digest=record["digest"],
            last_used=_last_used(self._dir.key_used(key_id)),
        )


def key_is_live(data_dir: DataDir, key_id: object) -> bool:
    """True when the key of that id has a record that is not revoked: what keeps its sessions open.
    Raises OSError (call within storage_errors)."""
    if not isinstance(key_id, str) or not is_key_id(key_id):
        return False
    record = _record(data_dir, key_id)
    return record is not None and record["revoked_at"] is None


def _record(data_dir: DataDir, key_id: str) -> dict[str, Any] | None:
    """The key's record, None when it has none. Raises StorageUnavailable for a record that is not whole
    and of the form written (an empty file after a power cut with fsync off, a hand edit; a scope other
    than ingest or read, which no key may have): a damaged record opens no session and keeps none open,
    and every call that reads it answers 503; the error names the key's id (public, in its file's name)
    so that an operator finds the file."""
    content = read_if_present(data_dir.key_record(key_id))
    if content is None:
        return None
    record = _well_formed(content)
    if record is None:
        raise StorageUnavailable(f"file storage found the record of key {key_id} damaged")
    return record


def _well_formed(content: bytes) -> dict[str, Any] | None:
    """The record in the content if it has the form add() writes, else None."""
    try:
        record = json.loads(content)
        if not isinstance(record, dict):
            return None
        Username(record["user"])
        check_key_scope(record["scope"])
        check_key_name(record["name"])
    except (ValueError, KeyError, TypeError, InvalidInput):
        # ValueError covers a torn record (JSONDecodeError) and one that is no UTF-8 (UnicodeDecodeError).
        return None
    fine = (
        _is_number(record.get("created_at"))
        and isinstance(record.get("digest"), str)
        and is_digest(record["digest"])
        and "revoked_at" in record
        and (record["revoked_at"] is None or _is_number(record["revoked_at"]))
    )
    return record if fine else None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _last_used(path: Path) -> float | None:
    content = read_if_present(path)
    if content is None:
        return None
    try:
        return float(content)
    except ValueError:
        # Written whole by rename, so never torn; a file edited by hand is no use recorded.
        return None


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive flock() on the folder, across threads and processes. Opening a folder to lock
    it changes none of its times (the change mark reads keys/'s)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
