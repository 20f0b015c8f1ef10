"""Registration, and login with a password or an access key."""

from __future__ import annotations

import hmac
import logging

from perfmon.domain.access import KeyUsage
from perfmon.domain.errors import InvalidCredentials, StorageUnavailable
from perfmon.domain.model import (
    Password,
    Session,
    User,
    Username,
    check_host_name,
    is_key_text,
    key_digest,
)
from perfmon.domain.ports import (
    Clock,
    KeyRepository,
    LoginThrottle,
    PasswordHasher,
    SessionRepository,
    TokenFactory,
    UserRepository,
)

logger = logging.getLogger(__name__)


class Accounts:
    """Creates users and opens sessions for them."""

    def __init__(
        self,
        users: UserRepository,
        sessions: SessionRepository,
        hasher: PasswordHasher,
        new_token: TokenFactory,
        clock: Clock,
        throttle: LoginThrottle,
        keys: KeyRepository,
        key_usage: KeyUsage,
    ) -> None:
        self._users = users
        self._sessions = sessions
        self._hasher = hasher
        self._new_token = new_token
        self._clock = clock
        self._throttle = throttle
        self._keys = keys
        self._key_usage = key_usage
        # Verified against when the user is unknown, so that both failures take the same time.
        self._decoy_hash = hasher.hash("perfmon decoy password")

    def register(self, name: str, password: str, host: str | None = None) -> Session:
        """Create the user and open its first session, on the host if one is named (PROTOCOL.md part 3);
        raise UsernameTaken if the name is in use, InvalidInput for a bad name, password or host."""
        username, secret = Username(name), Password(password)
        host = None if host is None else check_host_name(host)
        self._users.add(User(username, self._hasher.hash(secret.value)))
        try:
            return self._start_session(username, host)
        except Exception:
            # An error answer must mean nothing changed, or the client's retry would be told that the
            # name is taken (issue 9): take the user back unless someone has logged in as it meanwhile.
            self._remove_unused_user(username)
            raise

    def log_in(self, name: str, password: str, client: str, host: str | None = None) -> Session:
        """Open a new session for a user whose password matches, on the host if one is named (created on
        first use: a host is the name its sessions share); raise InvalidCredentials if not.

        `client` is the caller's network address: too many failures for the name from it, or from it
        at all, raise TooManyAttempts before the password is even checked (PROTOCOL.md limits)."""
        username, secret = Username(name), Password(password)
        host = None if host is None else check_host_name(host)
        self._throttle.check(username, client)
        user = self._users.get(username)
        if user is None:
            self._hasher.verify(self._decoy_hash, secret.value)
        elif self._hasher.verify(user.password_hash, secret.value):
            return self._start_session(username, host)
        # Counted after the check, so attempts racing in parallel may pass the limit by the number of
        # requests served at once (threads x processes in db mode) at most; a refused attempt is not
        # counted, so the block ends with its window.
        self._throttle.record_failure(username, client)
        raise InvalidCredentials()

    def log_in_with_key(self, key: str, client: str, host: str | None = None) -> Session:
        """Open a new session with an access key (PROTOCOL.md part 4), on the host if one is named: it
        has the key's scope, and the login counts as the key's use (last_used). Raises
        InvalidCredentials for a text that is no live key (unknown, revoked or malformed alike),
        InvalidInput for a bad host.

        Failures count against the client's address like failed password logins (there is no name to
        count them by), and TooManyAttempts refuses the address's logins alike."""
        host = None if host is None else check_host_name(host)
        self._throttle.check(None, client)
        digest = key_digest(key) if is_key_text(key) else None
        found = None if digest is None else self._keys.by_digest(digest)
        # The storage finds the key by the SHA-256 of the text given: what the lookup's timing could tell
        # is about that digest, which says nothing of any key (finding a key from it is a preimage). The
        # check that admits the key still compares the whole digest in constant time, so that a storage
        # whose lookup matched loosely (a prefix, a case-insensitive collation) cannot admit another key.
        if found is None or digest is None or not hmac.compare_digest(found.digest, digest):
            self._throttle.record_failure(None, client)
            raise InvalidCredentials()
        session = Session(
            token=self._new_token(),
            user=found.user,
            created_at=self._clock(),
            host=host,
            scope=found.scope,
            key_id=found.id,
        )
        self._sessions.add(session)
        self._key_usage.note(found.id)
        return session

    def _remove_unused_user(self, username: Username) -> None:
        """Best effort: the storage that just failed may fail again, and the first error is the one to
        report; the user then stays, able to log in with the password just given."""
        try:
            self._users.remove_unused(username)
        except StorageUnavailable as error:
            # No name, no password: the message of a StorageUnavailable is written to be logged.
            logger.warning("a failed registration could not be undone, its user stays: %s", error)

    def _start_session(self, username: Username, host: str | None) -> Session:
        session = Session(token=self._new_token(), user=username, created_at=self._clock(), host=host)
        self._sessions.add(session)
        return session
