"""Who may do what (PROTOCOL.md part 4): the gate every call with a session hash passes, logout, and
users' access keys.

A session opened with the user's password may do everything, as in part 1; one opened with an ingest key
may post, one opened with a read key may read (model.Scope). Only here is that decided: the HTTP layer
maps the refusal (Forbidden) to 403.
"""

from __future__ import annotations

import logging

from perfmon.domain.errors import Forbidden, KeyNotFound, StorageUnavailable, UnknownSession
from perfmon.domain.model import (
    AccessKey,
    Permission,
    Session,
    check_key_name,
    check_key_scope,
    is_key_id,
    key_digest,
    parse_session_token,
)
from perfmon.domain.ports import Clock, KeyRepository, KeySource, SessionRepository

logger = logging.getLogger(__name__)

# A key's last_used is written at most once a minute per key and process, not on each request: an agent
# posting every second would otherwise turn every post into two writes.
KEY_USE_RESOLUTION = 60.0


class KeyUsage:
    """Moves keys' last_used as their sessions are used, writing a key's at most once a minute."""

    def __init__(self, keys: KeyRepository, clock: Clock) -> None:
        self._keys = keys
        self._clock = clock
        # Key id -> when this process last wrote its last_used. Bounded by the number of live keys used.
        self._written: dict[str, float] = {}

    def note(self, key_id: str) -> None:
        """Count a use of the key now. A storage that cannot take the write costs the use its mark, not
        the request: the key's sessions go on working (a read while the disk is full)."""
        now = self._clock()
        written = self._written.get(key_id)
        if written is not None and 0 <= now - written < KEY_USE_RESOLUTION:
            return
        self._written[key_id] = now
        try:
            self._keys.mark_used(key_id, now)
        except StorageUnavailable as error:
            # A key id is public, and a StorageUnavailable's message is written to be logged.
            logger.warning("could not mark key %s used: %s", key_id, error)
            self._written.pop(key_id, None)


class SessionGate:
    """Admits a request's session hash to what it asks, or refuses it."""

    def __init__(self, sessions: SessionRepository, usage: KeyUsage) -> None:
        self._sessions = sessions
        self._usage = usage

    def admit(self, token: str, permission: Permission) -> Session:
        """The live session with this hash, if its scope grants the permission.

        Raises InvalidInput for a hash that is no UUID, UnknownSession for one that names no session or
        a closed one (PROTOCOL.md part 4: refused like an unknown session, 401), Forbidden when the scope
        does not grant it (403)."""
        session = self._sessions.get(parse_session_token(token))
        if session is None or session.closed:
            raise UnknownSession()
        if not session.scope.allows(permission):
            raise Forbidden()
        if session.key_id is not None:
            self._usage.note(session.key_id)
        return session


class Access:
    """Logout, and making, listing and revoking a user's access keys (PROTOCOL.md part 4)."""

    def __init__(
        self,
        gate: SessionGate,
        sessions: SessionRepository,
        keys: KeyRepository,
        key_source: KeySource,
        clock: Clock,
    ) -> None:
        self._gate = gate
        self._sessions = sessions
        self._keys = keys
        self._key_source = key_source
        self._clock = clock

    def log_out(self, token: str) -> None:
        """Close the session: every call refuses it from then on (401), in every process within
        ports.CLOSED_EVERYWHERE_WITHIN seconds; its samples stay, readable through the user's other
        sessions. Any scope may log out. Raises InvalidInput, UnknownSession, StorageUnavailable."""
        session = self._gate.admit(token, Permission.LOG_OUT)
        self._sessions.close(session.token, self._clock())

    def make_key(self, token: str, scope: object, name: object) -> tuple[AccessKey, str]:
        """A new key of the caller's user with that scope ("ingest" or "read") and name (1..128
        characters), and the key itself: shown this once, as only its digest is kept.

        Only a session opened with the password may (Forbidden for a key's). Raises, in this order,
        InvalidInput naming the field, UnknownSession, Forbidden, StorageUnavailable: the scope and
        name are checked before the session, so a malformed request is 400 whoever sends it."""
        checked_scope, checked_name = check_key_scope(scope), check_key_name(name)
        session = self._gate.admit(token, Permission.MANAGE_KEYS)
        secret = self._key_source.new_key()
        key = AccessKey(
            id=self._key_source.new_id(),
            user=session.user,
            scope=checked_scope,
            name=checked_name,
            created_at=self._clock(),
            digest=key_digest(secret),
        )
        self._keys.add(key)
        return key, secret

    def keys(self, token: str) -> list[AccessKey]:
        """The caller's user's live keys, oldest first, with their last_used (never the keys)."""
        session = self._gate.admit(token, Permission.MANAGE_KEYS)
        return self._keys.for_user(session.user)

    def revoke_key(self, token: str, key_id: str) -> None:
        """Revoke one of the caller's user's keys: it opens no session from then on, and every session
        opened with it is closed (401), in every process within ports.CLOSED_EVERYWHERE_WITHIN seconds.
        Raises KeyNotFound for an id that names no live key of the user (another user's, unknown,
        revoked, or not an id at all: all answered alike), and as make_key."""
        session = self._gate.admit(token, Permission.MANAGE_KEYS)
        if not is_key_id(key_id) or not self._keys.revoke(session.user, key_id, self._clock()):
            raise KeyNotFound()
