"""Where each record lives: paths derived from user names, session tokens and key ids and digests, never
made of them."""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

from perfmon.domain.model import Username, is_canonical_session_token, is_key_id

# The readable part of a user's file names keeps only characters that are inert in any shell or filesystem.
_NOT_IN_SLUG = re.compile(r"[^A-Za-z0-9_-]")
_SLUG_LENGTH = 32
# About 250 bytes each (the token, its Path, the cache's links).
_CACHED_FOLDERS = 65_536
# A key's digest as model.key_digest writes it: the SHA-256 in lowercase hex.
_DIGEST = re.compile(r"[0-9a-f]{64}")


def user_key(name: Username) -> str:
    """The stem of a user's file names: a slug for people to read, a SHA-256 so that no two names share it."""
    # No leading "-": a file name that looks like an option is a trap for whoever runs `rm` in the folder.
    slug = _NOT_IN_SLUG.sub("", name.value)[:_SLUG_LENGTH].lstrip("-")
    return f"{slug}~{hashlib.sha256(name.value.encode('utf-8')).hexdigest()}"


def _checked_token(token: str) -> str:
    # The domain only passes canonical tokens; checked again because a path is at stake.
    if not is_canonical_session_token(token):
        raise ValueError("a session token must be a canonical UUID string")
    return token


def _checked_key_id(key_id: str) -> str:
    # Key ids come from requests (DELETE /keys/{id}): checked here too because a path is at stake.
    if not is_key_id(key_id):
        raise ValueError("a key id must be 16 lowercase hex digits")
    return key_id


def is_digest(text: str) -> bool:
    """True when the text has the form of a key's digest (64 lowercase hex digits)."""
    return _DIGEST.fullmatch(text) is not None


class DataDir:
    """The data dir: its folders, created on construction, and the path of every record in them."""

    def __init__(self, root: Path, fsync: bool) -> None:
        self.root = root
        self.fsync = fsync
        self.users = root / "users"
        self.sessions = root / "sessions"
        self.tmp = root / "tmp"
        self.keys = root / "keys"
        self.key_use = self.keys / "used"
        self.closed = root / "closed"
        # Moved by every logout and revocation (changes.py).
        self.changes = root / "access.changes"
        # 0o700: the folders hold password hashes and everybody's samples; they are the server's alone.
        for folder in (root, self.users, self.sessions, self.tmp, self.keys, self.key_use, self.closed):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Every request names its session's folder: checking the token (a UUID parse) and joining the
        # path cost more than the rest of a one-sample post's Python. A token's folder never changes.
        self._session_folders = functools.lru_cache(maxsize=_CACHED_FOLDERS)(self._session_folder)

    def user_record(self, name: Username) -> Path:
        """The JSON record of the user."""
        return self.users / f"{user_key(name)}.json"

    def user_sessions(self, name: Username) -> Path:
        """The list of the user's session tokens."""
        return self.users / f"{user_key(name)}.sessions"

    def user_keys(self, name: Username) -> Path:
        """The list of the ids of the user's access keys."""
        return self.users / f"{user_key(name)}.keys"

    def key_record(self, key_id: str) -> Path:
        """The JSON record of the access key; ValueError if the id is not a key id."""
        return self.keys / f"{_checked_key_id(key_id)}.json"

    def key_index(self, digest: str) -> Path:
        """The file that names the key of this digest (a login's lookup); ValueError if it is no digest."""
        if not is_digest(digest):
            raise ValueError("a key digest must be 64 lowercase hex digits")
        return self.keys / f"{digest}.id"

    def key_used(self, key_id: str) -> Path:
        """The access key's last_used; ValueError if the id is not a key id."""
        return self.key_use / _checked_key_id(key_id)

    def closed_session(self, token: str) -> Path:
        """The mark of a closed (logged out) session; ValueError if the token is not canonical."""
        return self.closed / _checked_token(token)

    def session_record(self, token: str) -> Path:
        """The JSON record of the session; ValueError if the token is not canonical."""
        return self.sessions / f"{_checked_token(token)}.json"

    def session_folder(self, token: str) -> Path:
        """The folder of the session's series (series_files.py); ValueError if the token is not canonical."""
        return self._session_folders(token)

    def _session_folder(self, token: str) -> Path:
        return self.sessions / _checked_token(token)
