"""The original's PostgreSQL database: `users(user_name, user_passwd, user_id)` and
`sessions(user_id, user_session, user_cpu, user_timestamp)`, a row per sample, plus a row with no cpu
when a session starts. Read in one streamed query, so that no table has to fit in memory."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from itertools import chain, groupby
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, Engine, Row, create_engine, text
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from perfmon.adapters.postgres.driver_errors import first_line
from perfmon.adapters.postgres.engine import database_url
from perfmon.domain.legacy_records import (
    LegacySample,
    LegacySession,
    LegacySource,
    LegacySourceUnreadable,
    LegacyUser,
)

logger = logging.getLogger(__name__)

ROWS_PER_FETCH = 5_000

# Each user's rows together, each session's rows together, and within a session the rows in the order
# they were inserted (ctid: the original has no other record of it, and read its samples in that order).
_USERS_AND_SESSIONS = text(
    """
    SELECT u.user_id, u.user_name, u.user_passwd, s.user_id AS session_owner,
           s.user_session::text AS token, s.user_cpu AS cpu, s.user_timestamp AS time
    FROM users AS u LEFT JOIN sessions AS s ON s.user_id = u.user_id
    ORDER BY u.user_id, s.user_session, s.ctid
    """
)
_ORPHAN_ROWS = text(
    "SELECT count(*) FROM sessions AS s"
    " WHERE NOT EXISTS (SELECT 1 FROM users AS u WHERE u.user_id = s.user_id)"
)
_SHAPE = (
    text("SELECT user_name, user_passwd, user_id FROM users LIMIT 0"),
    text("SELECT user_id, user_session, user_cpu, user_timestamp FROM sessions LIMIT 0"),
)


def legacy_engine(url: str) -> Engine:
    """An engine for the original's database; ValueError for a malformed URL. The caller disposes it."""
    try:
        parsed = database_url(url)
    except ArgumentError:
        raise ValueError("--from-db is not a database URL") from None
    # No statement timeout, unlike perfmon's engine: sorting a large sessions table may take minutes.
    return create_engine(parsed, poolclass=NullPool, connect_args={"connect_timeout": 5})


@contextlib.contextmanager
def _unreadable_while(action: str) -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as error:
        # The driver's first line only: the whole message may quote rows, and rows hold passwords.
        reason = first_line(error)
        raise LegacySourceUnreadable(f"cannot read the legacy database while {action}: {reason}") from None


class LegacyDatabaseSource(LegacySource):
    """Reads users, sessions and samples from the original's database with one server-side cursor."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._bad_lines = 0

    @property
    def bad_lines(self) -> int:
        return self._bad_lines

    def check(self) -> None:
        """Raise LegacySourceUnreadable unless the database answers and has the original's two tables."""
        with _unreadable_while("checking its tables"), self._engine.connect() as connection:
            for query in _SHAPE:
                connection.execute(query)

    def users(self) -> Iterator[LegacyUser]:
        """Every user by user_id; consume each user's sessions, and their samples, before the next user."""
        with _unreadable_while("connecting"), self._engine.connect() as connection:
            # Sessions of no user can never be imported: counted as bad once, up front.
            with _unreadable_while("counting sessions of no user"):
                orphans = connection.execute(_ORPHAN_ROWS).scalar_one()
            if orphans:
                logger.debug("skipped %d rows of sessions whose user_id names no user", orphans)
                self._bad_lines += orphans
            for _, rows in groupby(self._rows(connection), key=attrgetter("user_id")):
                first, rows_of_user = _peek(rows)
                sessions = self._sessions(rows_of_user)
                # A NULL the original's schema forbids, should one be there anyway, makes a bad user line.
                name, password = first.user_name or "", first.user_passwd or ""
                yield LegacyUser(name=name, password=password, sessions=sessions)

    def _rows(self, connection: Connection) -> Iterator[Row[Any]]:
        with _unreadable_while("reading users and sessions"):
            # yield_per streams through a server-side cursor, a few thousand rows at a time.
            yield from connection.execution_options(yield_per=ROWS_PER_FETCH).execute(_USERS_AND_SESSIONS)

    def _sessions(self, rows: Iterable[Row[Any]]) -> Iterator[LegacySession]:
        for token, session_rows in groupby(rows, key=attrgetter("token")):
            first, rows_of_session = _peek(session_rows)
            if first.session_owner is None:
                continue  # the join found no session: a user who never logged in
            if token is None:
                logger.debug("skipped the rows of sessions that have no user_session")
                self._bad_lines += 1 + sum(1 for _ in session_rows)
                continue
            yield LegacySession(token=token, samples=self._samples(rows_of_session))

    def _samples(self, rows: Iterable[Row[Any]]) -> Iterator[LegacySample]:
        for row in rows:
            if row.cpu is None and row.time is None:
                continue  # the row the original wrote when the session started
            if row.cpu is None or row.time is None:
                logger.debug("skipped a row of sessions with only one of user_cpu and user_timestamp")
                self._bad_lines += 1
                continue
            yield LegacySample(cpu=row.cpu, time=row.time)


def _peek(rows: Iterator[Row[Any]]) -> tuple[Row[Any], Iterator[Row[Any]]]:
    """The first row of a non-empty group, and the whole group still to be read."""
    first = next(rows)
    return first, chain([first], rows)
