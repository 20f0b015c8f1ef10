"""Recording and reading the series of a user's sessions and hosts: raw samples, and buckets from the
rollups. A host's series is the merge of the same metric over all the host's sessions (PROTOCOL.md
part 3), so its history outlives the agent's restarts and logins."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence

from perfmon.domain.access import SessionGate
from perfmon.domain.errors import HostNotFound, InvalidInput, SessionNotFound
from perfmon.domain.model import (
    CPU,
    MAX_BATCH_SIZE,
    NO_SAMPLES,
    Bucket,
    HostOverview,
    Permission,
    Point,
    Sample,
    SampleSeries,
    Scope,
    Session,
    SessionOverview,
    SessionStatus,
    TimeRange,
    check_host_name,
    check_metric_name,
    check_step,
    is_public_session_id,
    parse_session_token,
    public_session_id,
)
from perfmon.domain.ports import Clock, SampleRepository, SessionRepository
from perfmon.domain.rollups import RollupBucket, merge_partials, stepped_buckets


class History:
    """The samples that clients push, and reads of a series (a session's or a host's metric) by time."""

    def __init__(
        self, gate: SessionGate, sessions: SessionRepository, samples: SampleRepository, clock: Clock
    ) -> None:
        self._gate = gate
        self._sessions = sessions
        self._samples = samples
        self._clock = clock

    def record(self, token: str, samples: Sequence[Sample]) -> Session:
        """Store 1..10,000 samples in the session named by the token, all or none; return that session.

        A session on a host keeps its status (GET /hosts): the server's clock at the write becomes its
        `seen`. A session without one keeps none, which nothing reads: the original client's posts then
        cost a single append (ports.SampleRepository.append). Raises InvalidInput (TooManySeries past 256
        series), UnknownSession, Forbidden (a read key's session), StorageUnavailable."""
        if not 1 <= len(samples) <= MAX_BATCH_SIZE:
            raise InvalidInput(f"a batch holds 1..{MAX_BATCH_SIZE} samples")
        session = self._gate.admit(token, Permission.POST)
        received_at = None if session.host is None else self._clock()
        self._samples.append(session.token, samples, received_at)
        return session

    def samples(
        self,
        token: str,
        time_range: TimeRange,
        of_session: str | None = None,
        metric: str = CPU,
        host: str | None = None,
    ) -> SampleSeries:
        """The metric's samples within the range, oldest first, of the token's session, another of its
        user's (SessionNotFound for any other), or one of its user's hosts (HostNotFound for any other).
        Every read raises UnknownSession for a hash of no live session, Forbidden for an ingest key's."""
        return self.samples_of(token, [metric], time_range, of_session, host)[metric]

    def samples_of(
        self,
        token: str,
        metrics: Sequence[str],
        time_range: TimeRange,
        of_session: str | None = None,
        host: str | None = None,
    ) -> dict[str, SampleSeries]:
        """samples() of several metrics, the session or host found once (GET /samples, PROTOCOL.md part 3)."""
        names = [check_metric_name(metric) for metric in metrics]
        tokens = self._readable(token, of_session, host, time_range)
        return {name: _Series(self._samples, tokens, name).between(time_range) for name in names}

    def buckets(
        self,
        token: str,
        time_range: TimeRange,
        step: float,
        of_session: str | None = None,
        metric: str = CPU,
        host: str | None = None,
    ) -> list[Bucket]:
        """The metric's samples within the range downsampled to one bucket per step seconds, oldest
        first: exactly what the raw samples give, read from the rollups where they serve (rollups.py)."""
        return self.buckets_of(token, [metric], time_range, step, of_session, host)[metric]

    def buckets_of(
        self,
        token: str,
        metrics: Sequence[str],
        time_range: TimeRange,
        step: float,
        of_session: str | None = None,
        host: str | None = None,
    ) -> dict[str, list[Bucket]]:
        """buckets() of several metrics, the session or host found once (a host page's one read)."""
        check_step(step)
        names = [check_metric_name(metric) for metric in metrics]
        tokens = self._readable(token, of_session, host, time_range)
        return {
            name: stepped_buckets(_Series(self._samples, tokens, name), time_range, step) for name in names
        }

    def sessions_of_user(self, token: str, metric: str = CPU) -> list[SessionOverview]:
        """Every session of the token's user, newest first, with a summary of its samples of the metric."""
        caller = self.session(token)
        sessions = self._sessions.for_user(caller.user)
        summaries = self._samples.summaries([session.token for session in sessions], metric)
        return [
            SessionOverview(session, summaries.get(session.token, NO_SAMPLES), _reference(caller, session))
            for session in sessions
        ]

    def hosts(self, token: str) -> list[HostOverview]:
        """Every host of the token's user, in code-point order of their names, summed up over its
        sessions from their status (PROTOCOL.md part 3, GET /hosts)."""
        by_host: dict[str, list[Session]] = {}
        for session in self._sessions.for_user(self.session(token).user):
            if session.host is not None:
                by_host.setdefault(session.host, []).append(session)
        statuses = self._samples.status([s.token for sessions in by_host.values() for s in sessions])
        return [_overview(name, by_host[name], statuses) for name in sorted(by_host)]

    def session(self, token: str) -> Session:
        """The live session with this token if it may read: InvalidInput if it is no UUID,
        UnknownSession if none (or closed), Forbidden for an ingest key's (access.SessionGate)."""
        return self._gate.admit(token, Permission.READ)

    def _readable(
        self, token: str, of_session: str | None, host: str | None, time_range: TimeRange
    ) -> list[str]:
        """The sessions the caller may read: its own, another of its user's, or a host's (only those of
        its sessions whose samples may meet the range: an agent restarted daily for a year has 365
        sessions, and a chart of the last hour reads one or two).

        `session=` and `host=` are checked before the caller's session, so that a malformed read is
        InvalidInput (400) whatever the hash, before UnknownSession (401) and Forbidden (403), as for
        the other parameters (PROTOCOL.md part 4's order)."""
        if of_session is not None and host is not None:
            raise InvalidInput("session and host do not combine")
        name = None if host is None else check_host_name(host)
        if of_session is not None and not is_public_session_id(of_session):
            of_session = parse_session_token(of_session)
        caller = self.session(token)
        if name is not None:
            sessions = [s for s in self._sessions.for_user(caller.user) if s.host == name]
            # Another user's host answers exactly like one that does not exist.
            if not sessions:
                raise HostNotFound()
            return self._meeting(sessions, time_range)
        if of_session is None:
            return [caller.token]
        if is_public_session_id(of_session):
            # The name GET /sessions gives a key's session: found among the user's own sessions only.
            mine = self._sessions.for_user(caller.user)
            target = next((s for s in mine if public_session_id(s.token) == of_session), None)
        else:
            target = self._sessions.get(of_session)
        # Another user's session answers exactly like one that does not exist.
        if target is None or target.user != caller.user:
            raise SessionNotFound()
        return [target.token]

    def _meeting(self, sessions: list[Session], time_range: TimeRange) -> list[str]:
        """The tokens of the sessions whose first..last sample times (status(): any metric, ever) meet
        the range, oldest session first: equal times of two sessions merge in that order, the nearest
        there is to arrival order (an agent's new session follows its last)."""
        statuses = self._samples.status([session.token for session in sessions])
        return [
            session.token
            for session in sorted(sessions, key=lambda session: session.created_at)
            if session.token in statuses
            and (time_range.start is None or statuses[session.token].last >= time_range.start)
            and (time_range.end is None or statuses[session.token].first <= time_range.end)
        ]


def _reference(caller: Session, session: Session) -> str:
    """What GET /sessions calls the session for this caller: a password session may be told tokens (it
    could open any session itself), a key's session only public ids."""
    return session.token if caller.scope is Scope.ALL else public_session_id(session.token)


def _overview(name: str, sessions: list[Session], statuses: dict[str, SessionStatus]) -> HostOverview:
    """The host's summary from its sessions' status; equal latest times go to the newer session."""
    found = [(session, statuses[session.token]) for session in sessions if session.token in statuses]
    latest: dict[str, tuple[float, float, float]] = {}
    for session, status in found:
        for metric, point in status.latest.items():
            rank = (point.taken_at, session.created_at, point.value)
            known = latest.get(metric)
            if known is None or rank[:2] >= known[:2]:
                latest[metric] = rank
    seen = [status.seen for _, status in found if status.seen is not None]
    return HostOverview(
        name=name,
        sessions=len(sessions),
        first=min((status.first for _, status in found), default=None),
        last=max((status.last for _, status in found), default=None),
        seen=max(seen, default=None),
        latest={metric: latest[metric][2] for metric in sorted(latest)},
    )


class _Series:
    """One metric's series over one or more sessions (a host's), as rollups.stepped_buckets reads it:
    the sessions' samples merged by time, stably (equal times in the sessions' order), and their rollup
    buckets of one start added up."""

    def __init__(self, samples: SampleRepository, tokens: list[str], metric: str) -> None:
        self._samples, self._tokens, self._metric = samples, tokens, metric

    def between(self, time_range: TimeRange) -> SampleSeries:
        parts = [self._samples.between(token, self._metric, time_range) for token in self._tokens]
        parts = [part for part in parts if len(part)]
        if len(parts) <= 1:
            return parts[0] if parts else SampleSeries([], [])
        return SampleSeries.of(heapq.merge(*parts, key=_time))

    def rollups(self, width: float, time_range: TimeRange) -> list[RollupBucket]:
        parts = [self._samples.rollups(token, self._metric, width, time_range) for token in self._tokens]
        parts = [part for part in parts if part]
        if len(parts) <= 1:
            return parts[0] if parts else []
        return merge_partials(itertools.chain.from_iterable(parts))


def _time(point: Point) -> float:
    return point.taken_at
