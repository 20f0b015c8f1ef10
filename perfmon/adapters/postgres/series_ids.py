"""The ids of named series (the series table), found or created per group of writes and cached.

Series, like sessions, are never deleted, so an id once found stays right for the life of the process;
the cache spares each write a lookup. A series is created in the transaction that stores its first
samples, so that a write that fails leaves no empty series behind.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

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
# Finds existing series: a plain indexed lookup, a tenth of the cost of the statement above, and what a
# process's first write to a session that already has its series (after a restart) needs.
_FIND = (
    "SELECT id, session_token::text, metric FROM series "
    "WHERE session_token = ANY(%(tokens)s::uuid[]) AND metric = ANY(%(metrics)s::text[])"
)
_ATTEMPTS = 3


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

    def find_or_create(self, cursor: Any, keys: list[SeriesKey]) -> dict[SeriesKey, int]:
        """The ids of the series, created where missing, in the cursor's transaction (psycopg2 cursor).

        Raises the driver's IntegrityError when a session is not there (the series' foreign key)."""
        tokens, metrics = sorted({token for token, _ in keys}), sorted({metric for _, metric in keys})
        cursor.execute(_FIND, {"tokens": tokens, "metrics": metrics})
        wanted_keys = set(keys)
        # Both lists match every pair of a token and a metric: keep the pairs asked for.
        found = {
            (token, metric): id_ for id_, token, metric in cursor.fetchall() if (token, metric) in wanted_keys
        }
        wanted = [key for key in keys if key not in found]
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
