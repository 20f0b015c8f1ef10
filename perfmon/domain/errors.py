"""Domain failures. Only `entrypoints/http/errors.py` knows which HTTP status each one means."""

from __future__ import annotations


class PerfmonError(Exception):
    """Base of every failure the domain reports on purpose."""


class InvalidInput(PerfmonError):
    """A value breaks a rule of the model (a name too long, a negative cpu, ...)."""


class UsernameTaken(PerfmonError):
    """Registration of a name that already has a user."""


class InvalidCredentials(PerfmonError):
    """Unknown user or wrong password: deliberately the same error for both."""


class UnknownSession(PerfmonError):
    """A well-formed session token that names no session."""


class SessionNotFound(PerfmonError):
    """A session that is not one of the caller's: another user's looks exactly like none."""


class HostNotFound(PerfmonError):
    """A host that is not one of the caller's user's: another user's looks exactly like none."""


class KeyNotFound(PerfmonError):
    """A key id that is not one of the caller's user's live keys: another user's looks exactly like none."""


class Forbidden(PerfmonError):
    """A live session asking for what its scope does not grant (PROTOCOL.md part 4): an ingest session
    reading, a read session posting, a key's session managing keys."""


class TooManySeries(InvalidInput):
    """A write that would give a session more than 256 series (PROTOCOL.md part 3); nothing stored."""


class StorageUnavailable(PerfmonError):
    """The storage cannot be reached or written right now; the caller may retry later."""


class TooManyAttempts(PerfmonError):
    """Too many failed logins for this name or from this address: refused, even with the right password."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after} s")
        # Whole seconds until the window that holds the failures has passed (at least 1).
        self.retry_after = retry_after
