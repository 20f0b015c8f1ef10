"""Users as one JSON record each, named by a key derived from the user name."""

from __future__ import annotations

import contextlib
import json
import os

from perfmon.adapters.filesystem.files import publish_file, read_if_present, storage_errors
from perfmon.adapters.filesystem.layout import DataDir
from perfmon.domain.errors import InvalidInput, StorageUnavailable, UsernameTaken
from perfmon.domain.model import User, Username, is_canonical_session_token
from perfmon.domain.ports import UserRepository

# The length of a canonical UUID string, as the sessions list holds them (sessions.py).
_TOKEN_LENGTH = 36


class FileUserRepository(UserRepository):
    """Users in `users/<key>.json`; the record holds the real name, the file name only a key."""

    def __init__(self, data_dir: DataDir) -> None:
        self._dir = data_dir

    def add(self, user: User) -> None:
        record = {"name": user.name.value, "password_hash": user.password_hash}
        content = json.dumps(record, ensure_ascii=False).encode("utf-8")
        with storage_errors("registering a user"):
            try:
                publish_file(self._dir, self._dir.user_record(user.name), content)
            except FileExistsError:
                raise UsernameTaken() from None

    def get(self, name: Username) -> User | None:
        with storage_errors("looking up a user"):
            content = read_if_present(self._dir.user_record(name))
        if content is None:
            return None
        try:
            record = json.loads(content)
            user = User(Username(record["name"]), record["password_hash"])
        except (ValueError, KeyError, TypeError, InvalidInput):
            # Torn by a power cut with fsync off, or edited by hand (ValueError covers bad JSON and bad
            # UTF-8): a storage fault, answered 503, never a 500; the name stays out of the message.
            raise StorageUnavailable("file storage found a user record damaged") from None
        if not (isinstance(user.password_hash, str) and user.name == name):
            raise StorageUnavailable("file storage found a user record damaged")
        return user

    def remove_unused(self, name: Username) -> None:
        with storage_errors("removing an unused user"):
            # A session exists once its record does (sessions.py writes it last). A token in the list
            # without a record is a session whose start failed: it does not keep the user. A login racing
            # between this check and the unlink would keep a session of a removed user; it needs the right
            # password within that instant of a failed registration, so no lock is taken for it.
            listed = read_if_present(self._dir.user_sessions(name)) or b""
            tokens = (line[-_TOKEN_LENGTH:] for line in listed.decode("ascii", "replace").splitlines())
            if any(self._has_record(token) for token in tokens):
                return
            for path in (self._dir.user_record(name), self._dir.user_sessions(name)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    def _has_record(self, token: str) -> bool:
        return is_canonical_session_token(token) and self._dir.session_record(token).exists()
