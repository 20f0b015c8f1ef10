"""Recording and reading the series of a user's sessions: raw samples, and buckets from the rollups."""

from __future__ import annotations

from collections.abc import Sequence

from perfmon.domain.errors import InvalidInput, SessionNotFound, UnknownSession
from perfmon.domain.model import (
    CPU,
    MAX_BATCH_SIZE,
    NO_SAMPLES,
    Bucket,
    Sample,
    SampleSeries,
    Session,
    SessionOverview,
    TimeRange,
    check_metric_name,
    check_step,
    parse_session_token,
)
from perfmon.domain.ports import SampleRepository, SessionRepository
from perfmon.domain.rollups import RollupBucket, stepped_buckets


class History:
    """The samples that clients push, and reads of a series (a session's metric) by time range."""

    def __init__(self, sessions: SessionRepository, samples: SampleRepository) -> None:
        self._sessions = sessions
        self._samples = samples

    def record(self, token: str, samples: Sequence[Sample]) -> Session:
        """Store 1..10,000 samples in the session named by the token, all or none; return that session."""
        if not 1 <= len(samples) <= MAX_BATCH_SIZE:
            raise InvalidInput(f"a batch holds 1..{MAX_BATCH_SIZE} samples")
        session = self.session(token)
        self._samples.append(session.token, samples)
        return session

    def samples(
        self, token: str, time_range: TimeRange, of_session: str | None = None, metric: str = CPU
    ) -> SampleSeries:
        """The metric's samples within the range, oldest first, of the token's session or another of its
        user's (SessionNotFound for any other)."""
        target = self._readable_session(token, of_session)
        return self._samples.between(target.token, check_metric_name(metric), time_range)

    def buckets(
        self, token: str, time_range: TimeRange, step: float, of_session: str | None = None, metric: str = CPU
    ) -> list[Bucket]:
        """The metric's samples within the range downsampled to one bucket per step seconds, oldest
        first: exactly what the raw samples give, read from the rollups where they serve (rollups.py)."""
        check_step(step)
        target = self._readable_session(token, of_session)
        series = _Series(self._samples, target.token, check_metric_name(metric))
        return stepped_buckets(series, time_range, step)

    def sessions_of_user(self, token: str, metric: str = CPU) -> list[SessionOverview]:
        """Every session of the token's user, newest first, with a summary of its samples of the metric."""
        sessions = self._sessions.for_user(self.session(token).user)
        summaries = self._samples.summaries([session.token for session in sessions], metric)
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


class _Series:
    """One series of one session, as rollups.stepped_buckets reads it."""

    def __init__(self, samples: SampleRepository, token: str, metric: str) -> None:
        self._samples, self._token, self._metric = samples, token, metric

    def between(self, time_range: TimeRange) -> SampleSeries:
        return self._samples.between(self._token, self._metric, time_range)

    def rollups(self, width: float, time_range: TimeRange) -> list[RollupBucket]:
        return self._samples.rollups(self._token, self._metric, width, time_range)
