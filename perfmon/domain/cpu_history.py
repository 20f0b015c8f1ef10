"""Recording and reading the CPU samples of a user's sessions."""

from __future__ import annotations

from collections.abc import Sequence

from perfmon.domain.errors import InvalidInput, SessionNotFound, UnknownSession
from perfmon.domain.model import (
    MAX_BATCH_SIZE,
    NO_SAMPLES,
    Bucket,
    CpuSample,
    SampleSeries,
    Session,
    SessionOverview,
    TimeRange,
    check_step,
    parse_session_token,
)
from perfmon.domain.ports import SampleRepository, SessionRepository


class CpuHistory:
    """The CPU samples that clients push, and reads of them by session and time range."""

    def __init__(self, sessions: SessionRepository, samples: SampleRepository) -> None:
        self._sessions = sessions
        self._samples = samples

    def record(self, token: str, samples: Sequence[CpuSample]) -> Session:
        """Store 1..10,000 samples in the session named by the token, all or none; return that session."""
        if not 1 <= len(samples) <= MAX_BATCH_SIZE:
            raise InvalidInput(f"a batch holds 1..{MAX_BATCH_SIZE} samples")
        session = self.session(token)
        self._samples.append(session.token, samples)
        return session

    def samples(self, token: str, time_range: TimeRange, of_session: str | None = None) -> SampleSeries:
        """The samples within the range, oldest first, of the token's session or another of its user's."""
        target = self._readable_session(token, of_session)
        return self._samples.between(target.token, time_range)

    def buckets(
        self, token: str, time_range: TimeRange, step: float, of_session: str | None = None
    ) -> list[Bucket]:
        """The samples within the range downsampled to one bucket per step seconds, oldest first."""
        check_step(step)
        target = self._readable_session(token, of_session)
        return self._samples.buckets(target.token, time_range, step)

    def sessions_of_user(self, token: str) -> list[SessionOverview]:
        """Every session of the token's user, newest first, with a summary of its samples."""
        sessions = self._sessions.for_user(self.session(token).user)
        summaries = self._samples.summaries([session.token for session in sessions])
        return [SessionOverview(session, summaries.get(session.token, NO_SAMPLES)) for session in sessions]

    def session(self, token: str) -> Session:
        """The live session with this token; InvalidInput if it is no UUID, UnknownSession if none."""
        session = self._sessions.get(parse_session_token(token))
        if session is None:
            raise UnknownSession()
        return session

    def _readable_session(self, token: str, of_session: str | None) -> Session:
        """The caller's own session, or another of the same user's: never another user's."""
        caller = self.session(token)
        if of_session is None:
            return caller
        target = self._sessions.get(parse_session_token(of_session))
        # Another user's session answers exactly like one that does not exist.
        if target is None or target.user != caller.user:
            raise SessionNotFound()
        return target
