"""The ids of named series (the series table), found or created per group of writes and cached.

Series, like sessions, are never deleted, so an id once found stays right for the life of the process;
the cache spares each write a lookup. A series is created in the transaction that stores its first
samples, so that a write that fails leaves no empty series behind.

A session holds at most MAX_SERIES_PER_SESSION series (PROTOCOL.md part 3). Only a write with a series
the cache does not know can pass that limit; such a write locks its session's row first (claim()), so
that writers of other processes creating series of the same session wait for its commit, and counts the
session's series with their commits seen: the count is exact whatever the number of processes.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from perfmon.domain.errors import PerfmonError, TooManySeries, UnknownSession
from perfmon.domain.model import MAX_SERIES_PER_SESSION

# Bounds the cache's memory (about 200 bytes an entry); the oldest entries make room, and a miss costs
# one indexed lookup inside the write.
CACHE_LIMIT = 262_144

# The key of a series: a session's canonical token and a metric name.
SeriesKey = tuple[str, str]

# Finds the series of the given keys and creates those missing, in key order so that writers of several
# processes creating the same series lock them in the same order. A series that another transaction
# creates concurrently is skipped by ON CONFLICT but not seen by this statement's snapshot: the caller
# asks again for what is missing.
_FIND_OR_CREATE = """
WITH wanted AS (
    SELECT * FROM unnest(%(tokens)s::uuid[], %(metrics)s::text[]) AS wanted (session_token, metric)
), created AS (
    INSERT INTO series (session_token, metric)
    SELECT session_token, metric FROM wanted ORDER BY session_token, metric
    ON CONFLICT (session_token, metric) DO NOTHING
    RETURNING id, session_token, metric
)
SELECT id, session_token::text, metric FROM created
UNION ALL
SELECT series.id, series.session_token::text, series.metric
FROM series JOIN wanted USING (session_token, metric)
"""
# Locks the sessions' rows in token order (as every writer does: no deadlock between two of them). FOR NO
# KEY UPDATE is what an append's update of the session's status takes: it waits for a concurrent write
# to the session, and lets series be inserted (their foreign key takes KEY SHARE). A session that is not
# there has no row.
_LOCK = (
    "SELECT token::text FROM sessions WHERE token = ANY(%(tokens)s::uuid[]) ORDER BY token FOR NO KEY UPDATE"
)
# Then, in a statement of its own, whose snapshot sees what the writers waited for have committed (a
# statement's snapshot is taken when it starts, before any wait for a lock), the sessions' series.
_LIST = "SELECT session_token::text, id, metric FROM series WHERE session_token = ANY(%(tokens)s::uuid[])"
_ATTEMPTS = 3

# The metrics that one request writes to its session: a session's token and the names of its samples.
Request = tuple[str, Collection[str]]


class SeriesIds:
    """A cache of series ids, shared by the threads of a process."""

    def __init__(self) -> None:
        self._ids: dict[SeriesKey, int] = {}
        self._lock = threading.Lock()

    def get(self, key: SeriesKey) -> int | None:
        """The cached id of the series, or None."""
        with self._lock:
            return self._ids.get(key)

    def cached(self, keys: Iterable[SeriesKey]) -> tuple[dict[SeriesKey, int], list[SeriesKey]]:
        """The cached ids among the keys, and the keys not cached (sorted)."""
        found: dict[SeriesKey, int] = {}
        missing: set[SeriesKey] = set()
        with self._lock:
            for key in keys:
                series_id = self._ids.get(key)
                if series_id is None:
                    missing.add(key)
                else:
                    found[key] = series_id
        return found, sorted(missing)

    def claim(
        self, cursor: Any, requests: Sequence[Request], also_locked: Collection[str] = ()
    ) -> tuple[dict[SeriesKey, int], dict[int, PerfmonError]]:
        """The ids of the series the requests write (found, or created where missing) in the cursor's
        transaction (psycopg2 cursor), and the requests refused, by their index: UnknownSession when the
        session is not there, TooManySeries when the request would give its session more than
        MAX_SERIES_PER_SESSION series. Requests are taken in order: of two to one session that each fit
        but not together, the first is admitted and the second refused. No series of a refused request is
        created. The rows of the requests' sessions and of `also_locked` (tokens: the transaction's other
        sessions) are locked first, all in token order, and stay locked until the transaction ends (see
        the module's docstring, and group_commit.py's on lock order)."""
        tokens = {"tokens": sorted({token for token, _ in requests}.union(also_locked))}
        cursor.execute(_LOCK, tokens)
        # Per session: its series, by name, with the id, or None for one that an admitted request adds.
        held: dict[str, dict[str, int | None]] = {token: {} for (token,) in cursor.fetchall()}
        cursor.execute(_LIST, tokens)
        for token, series_id, metric in cursor.fetchall():
            held[token][metric] = series_id
        refused: dict[int, PerfmonError] = {}
        admitted: set[SeriesKey] = set()
        for index, (token, metrics) in enumerate(requests):
            names = held.get(token)
            if names is None:
                refused[index] = UnknownSession()
                continue
            fresh = [metric for metric in metrics if metric not in names]
            if len(names) + len(fresh) > MAX_SERIES_PER_SESSION:
                refused[index] = TooManySeries(f"a session holds at most {MAX_SERIES_PER_SESSION} metrics")
                continue
            names.update(dict.fromkeys(fresh))
            admitted.update((token, metric) for metric in metrics)
        found = {key: series_id for key in admitted if (series_id := held[key[0]][key[1]]) is not None}
        new = sorted(key for key in admitted if key not in found)
        if new:
            found.update(self._create(cursor, new))
        return found, refused

    @staticmethod
    def _create(cursor: Any, keys: list[SeriesKey]) -> dict[SeriesKey, int]:
        """The ids of the series of the keys (sorted), created where missing."""
        found: dict[SeriesKey, int] = {}
        wanted = keys
        for _ in range(_ATTEMPTS):
            if not wanted:
                return found
            cursor.execute(
                _FIND_OR_CREATE,
                {"tokens": [token for token, _ in wanted], "metrics": [metric for _, metric in wanted]},
            )
            found.update({(token, metric): series_id for series_id, token, metric in cursor.fetchall()})
            wanted = [key for key in wanted if key not in found]
        if not wanted:
            return found
        raise RuntimeError("series created concurrently were not found after their creation")

    def remember(self, found: dict[SeriesKey, int]) -> None:
        """Cache ids whose series are committed."""
        with self._lock:
            for key, series_id in found.items():
                if key not in self._ids and len(self._ids) >= CACHE_LIMIT:
                    del self._ids[next(iter(self._ids))]
                self._ids[key] = series_id

    def forget(self, keys: Iterable[SeriesKey]) -> None:
        """Drop cached ids that proved wrong (their series deleted behind perfmon's back)."""
        with self._lock:
            for key in keys:
                self._ids.pop(key, None)
