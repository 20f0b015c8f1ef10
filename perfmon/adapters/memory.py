"""In-memory repositories: the unit tests' fakes, held to the same contract as the real adapters."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence

from perfmon.domain.errors import TooManySeries, UnknownSession, UsernameTaken
from perfmon.domain.model import (
    MAX_SERIES_PER_SESSION,
    AccessKey,
    Point,
    Sample,
    SampleSeries,
    SampleSummary,
    Session,
    SessionStatus,
    TimeRange,
    User,
    Username,
    bucket_start,
    moved_status,
)
from perfmon.domain.ports import (
    HistoryMaintenance,
    KeyRepository,
    PruneReport,
    SampleRepository,
    SessionRepository,
    UserRepository,
)
from perfmon.domain.rollups import DAY, ROLLUP_WIDTHS, RollupBucket, check_width, day_start, overlapping


class InMemoryUserRepository(UserRepository):
    """Users in a dict; a lock makes add-unless-taken atomic across server threads."""

    def __init__(self, sessions: SessionRepository | None = None) -> None:
        self._users: dict[str, User] = {}
        self._lock = threading.Lock()
        # Where remove_unused looks for the user's sessions; without one, no user has any.
        self._sessions = sessions

    def add(self, user: User) -> None:
        with self._lock:
            if user.name.value in self._users:
                raise UsernameTaken()
            self._users[user.name.value] = user

    def get(self, name: Username) -> User | None:
        return self._users.get(name.value)

    def remove_unused(self, name: Username) -> None:
        with self._lock:
            if self._sessions is None or not self._sessions.for_user(name):
                self._users.pop(name.value, None)


class InMemorySessionRepository(SessionRepository):
    """Sessions in a dict keyed by token; closed ones in a set, and those of revoked keys by the key."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._closed: set[str] = set()
        self._revoked_keys: set[str] = set()

    def add(self, session: Session) -> None:
        self._sessions[session.token] = session

    def get(self, token: str) -> Session | None:
        session = self._sessions.get(token)
        return None if session is None else self._as_stored(session)

    def for_user(self, user: Username) -> list[Session]:
        mine = [self._as_stored(session) for session in list(self._sessions.values()) if session.user == user]
        # Newest first; among equal creation times the later added first, as dicts keep insertion order.
        return sorted(reversed(mine), key=lambda session: session.created_at, reverse=True)

    def close(self, token: str, at: float) -> None:
        if token in self._sessions:
            self._closed.add(token)

    def close_sessions_of_key(self, key_id: str) -> None:
        """Close every session opened with the key, also one opened while it is being revoked."""
        self._revoked_keys.add(key_id)

    def _as_stored(self, session: Session) -> Session:
        closed = session.token in self._closed or session.key_id in self._revoked_keys
        return dataclasses.replace(session, closed=True) if closed else session


class InMemoryKeyRepository(KeyRepository):
    """Keys in a dict keyed by id; revoking one closes its sessions in the given session store."""

    def __init__(self, sessions: InMemorySessionRepository) -> None:
        self._sessions = sessions
        self._keys: dict[str, AccessKey] = {}
        self._lock = threading.Lock()

    def add(self, key: AccessKey) -> None:
        with self._lock:
            if key.id in self._keys or any(known.digest == key.digest for known in self._keys.values()):
                raise ValueError("key id or digest already in use")
            self._keys[key.id] = key

    def by_digest(self, digest: str) -> AccessKey | None:
        return next((key for key in list(self._keys.values()) if key.digest == digest), None)

    def for_user(self, user: Username) -> list[AccessKey]:
        mine = [key for key in list(self._keys.values()) if key.user == user]
        return sorted(mine, key=lambda key: (key.created_at, key.id))

    def revoke(self, user: Username, key_id: str, at: float) -> bool:
        with self._lock:
            key = self._keys.get(key_id)
            if key is None or key.user != user:
                return False
            del self._keys[key_id]
            self._sessions.close_sessions_of_key(key_id)
            return True

    def mark_used(self, key_id: str, at: float) -> None:
        with self._lock:
            key = self._keys.get(key_id)
            if key is not None and (key.last_used is None or key.last_used < at):
                self._keys[key_id] = dataclasses.replace(key, last_used=at)


class InMemorySampleRepository(SampleRepository, HistoryMaintenance):
    """Series in lists per session and metric, with rollups kept up to date on each append."""

    def __init__(self, sessions: SessionRepository) -> None:
        # (token, metric) -> the raw samples, in arrival order.
        self._raw: dict[tuple[str, str], list[Point]] = {}
        # (token, metric, width) -> bucket start -> the bucket.
        self._rollups: dict[tuple[str, str, float], dict[float, RollupBucket]] = {}
        # token -> its status, moved by each append.
        self._status: dict[str, SessionStatus] = {}
        self._lock = threading.Lock()
        # Asked on each append, as the port refuses samples for a session that is not there.
        self._sessions = sessions

    def append(self, token: str, samples: Sequence[Sample], received_at: float | None = None) -> None:
        if not samples:
            return
        if self._sessions.get(token) is None:
            raise UnknownSession()
        with self._lock:
            known = {metric for (owner, metric) in self._raw if owner == token}
            if len(known.union(*(sample.values for sample in samples))) > MAX_SERIES_PER_SESSION:
                raise TooManySeries(f"a session holds at most {MAX_SERIES_PER_SESSION} metrics")
            if received_at is not None:
                self._status[token] = moved_status(self._status.get(token), samples, received_at)
            for sample in samples:
                for metric, value in sample.values.items():
                    self._raw.setdefault((token, metric), []).append(Point(value, sample.taken_at))
                    for width in ROLLUP_WIDTHS:
                        self._add_to_rollup((token, metric, width), value, sample.taken_at)

    def _add_to_rollup(self, key: tuple[str, str, float], value: float, moment: float) -> None:
        width = key[2]
        buckets = self._rollups.setdefault(key, {})
        start = bucket_start(moment, width)
        partial = RollupBucket.of(width, start, [value], [moment])
        known = buckets.get(start)
        buckets[start] = partial if known is None else known.merged(partial)

    def between(self, token: str, metric: str, time_range: TimeRange) -> SampleSeries:
        with self._lock:
            stored = SampleSeries.of(self._raw.get((token, metric), ()))
        return stored.within(time_range)

    def rollups(self, token: str, metric: str, width: float, time_range: TimeRange) -> list[RollupBucket]:
        check_width(width)
        with self._lock:
            buckets = sorted(self._rollups.get((token, metric, width), {}).items())
        return overlapping((bucket for _, bucket in buckets), time_range)

    def summaries(self, tokens: Sequence[str], metric: str) -> dict[str, SampleSummary]:
        found: dict[str, SampleSummary] = {}
        with self._lock:
            for token in tokens:
                days = list(self._rollups.get((token, metric, DAY), {}).values())
                if days:
                    count = sum(day.count for day in days)
                    found[token] = SampleSummary(count, min(d.first for d in days), max(d.last for d in days))
        return found

    def metrics(self, token: str) -> list[str]:
        with self._lock:
            return sorted({metric for (owner, metric) in self._raw if owner == token})

    def status(self, tokens: Sequence[str]) -> dict[str, SessionStatus]:
        with self._lock:
            return {token: self._status[token] for token in tokens if token in self._status}

    def maintain(self, now: float) -> None:
        """Nothing to do: rollups are kept up to date on each append."""

    def prune(self, raw_before: float | None, rollups_before: float | None, apply: bool) -> PruneReport:
        raw_units = rollup_units = 0
        with self._lock:
            if raw_before is not None:
                cutoff = day_start(raw_before)
                for key, points in self._raw.items():
                    kept = [point for point in points if point.taken_at >= cutoff]
                    # A unit here is one day of one series, as a file segment is.
                    raw_units += len({day_start(p.taken_at) for p in points if p.taken_at < cutoff})
                    if apply:
                        self._raw[key] = kept
            if rollups_before is not None:
                cutoff = day_start(rollups_before)
                for buckets in self._rollups.values():
                    old = [start for start in buckets if start < cutoff]
                    rollup_units += len({day_start(start) for start in old})
                    if apply:
                        for start in old:
                            del buckets[start]
        return PruneReport(applied=apply, raw_units=raw_units, rollup_units=rollup_units)
