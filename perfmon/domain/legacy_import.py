"""Moving the original PerformanceMonitor's users, sessions and samples into perfmon's storage."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain

from perfmon.domain.errors import InvalidInput, UsernameTaken
from perfmon.domain.legacy_records import LegacySample, LegacySession, LegacySource, LegacyUser
from perfmon.domain.model import (
    MAX_BATCH_SIZE,
    CpuSample,
    Password,
    Sample,
    Session,
    User,
    Username,
    parse_session_token,
)
from perfmon.domain.ports import Clock, PasswordHasher, SampleRepository, SessionRepository, UserRepository

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportReport:
    """What an import did; "skipped" counts records that perfmon already held."""

    users_imported: int = 0
    users_skipped: int = 0
    sessions_imported: int = 0
    sessions_skipped: int = 0
    samples_imported: int = 0
    bad_lines: int = 0


class LegacyImport:
    """Imports a legacy source; running it again imports nothing twice."""

    def __init__(
        self,
        users: UserRepository,
        sessions: SessionRepository,
        samples: SampleRepository,
        hasher: PasswordHasher,
        clock: Clock,
        batch_size: int = MAX_BATCH_SIZE,
    ) -> None:
        self._users = users
        self._sessions = sessions
        self._samples = samples
        self._hasher = hasher
        self._clock = clock
        self._batch_size = batch_size

    def run(
        self, source: LegacySource, on_progress: Callable[[ImportReport], None] = lambda report: None
    ) -> ImportReport:
        """Import every user with the sessions and samples perfmon lacks; bad lines are counted, not fatal."""
        tally: Counter[str] = Counter()

        def report() -> ImportReport:
            return ImportReport(**{**tally, "bad_lines": tally["bad_lines"] + source.bad_lines})

        for legacy in source.users():
            user = self._import_user(legacy, tally)
            if user is not None:
                for session in legacy.sessions:
                    self._import_session(user, session, tally, lambda: on_progress(report()))
            on_progress(report())
        return report()

    def _import_user(self, legacy: LegacyUser, tally: Counter[str]) -> Username | None:
        """The user's name once it is in perfmon (imported now or before); None for a bad user line."""
        try:
            name = Username(legacy.name)
            password = Password(legacy.password)
        except InvalidInput as error:
            # The reason only: the rejected name or password could be a secret typed in the wrong field.
            logger.debug("skipped a legacy user: %s", error)
            tally["bad_lines"] += 1
            return None
        # Asked first so that a second run pays no Argon2 hashing for users it already imported.
        if self._users.get(name) is not None:
            tally["users_skipped"] += 1
            return name
        try:
            self._users.add(User(name, self._hasher.hash(password.value)))
            tally["users_imported"] += 1
        except UsernameTaken:
            tally["users_skipped"] += 1
        return name

    def _import_session(
        self, user: Username, legacy: LegacySession, tally: Counter[str], progress: Callable[[], None]
    ) -> None:
        """Add the session under its original hash, then its samples in all-or-nothing batches."""
        try:
            token = parse_session_token(legacy.token.strip())
        except InvalidInput:
            logger.debug("skipped a legacy session hash that is no UUID")
            tally["bad_lines"] += 1
            return
        existing = self._sessions.get(token)
        if existing is not None:
            if existing.user != user:
                # A conflict, never a reason to hand over the samples; the hash itself is a credential.
                logger.debug("skipped a legacy session whose hash another user already has")
            tally["sessions_skipped" if existing.user == user else "bad_lines"] += 1
            return
        batches = self._batches(legacy.samples, tally)
        first = next(batches, [])
        # The original kept no session start: its first sample is the closest time there is.
        created_at = first[0].taken_at if first else self._clock()
        self._sessions.add(Session(token=token, user=user, created_at=created_at))
        tally["sessions_imported"] += 1
        for batch in chain([first], batches):
            if batch:
                self._samples.append(token, batch)
                tally["samples_imported"] += len(batch)
                progress()

    def _batches(self, samples: Iterable[LegacySample], tally: Counter[str]) -> Iterator[list[Sample]]:
        """The valid samples in arrival order, in non-empty lists of at most batch_size."""
        batch: list[Sample] = []
        for legacy in samples:
            try:
                batch.append(CpuSample(cpu=legacy.cpu, taken_at=legacy.time).sample())
            except InvalidInput:
                tally["bad_lines"] += 1
                continue
            if len(batch) == self._batch_size:
                yield batch
                batch = []
        if batch:
            yield batch
