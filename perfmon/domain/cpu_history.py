"""Recording and reading the CPU samples of a session."""

from __future__ import annotations

from collections.abc import Sequence

from perfmon.domain.errors import UnknownSession
from perfmon.domain.model import CpuSample, Session, TimeRange, parse_session_token
from perfmon.domain.ports import SampleRepository, SessionRepository


class CpuHistory:
    """The CPU samples that clients push, and reads of them by time range."""

    def __init__(self, sessions: SessionRepository, samples: SampleRepository) -> None:
        self._sessions = sessions
        self._samples = samples

    def record(self, token: str, samples: Sequence[CpuSample]) -> Session:
        """Store samples in the session named by the token, all or none; return that session."""
        session = self.session(token)
        self._samples.append(session.token, samples)
        return session

    def samples(self, token: str, time_range: TimeRange) -> list[CpuSample]:
        """The session's samples within the range, oldest first."""
        session = self.session(token)
        return self._samples.between(session.token, time_range)

    def session(self, token: str) -> Session:
        """The live session with this token; InvalidInput if it is no UUID, UnknownSession if none."""
        session = self._sessions.get(parse_session_token(token))
        if session is None:
            raise UnknownSession()
        return session
