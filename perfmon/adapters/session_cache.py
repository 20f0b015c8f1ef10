"""A process's cache of sessions that forgets them when any process of the deployment closes one.

Sessions are read on every request, so both storages keep the ones in use in memory. A session can be
closed (logout, a revoked key: PROTOCOL.md part 4), by this process or by another on the same data dir or
database. Each storage keeps a *change mark* that every closing moves (a file's size, a row's counter),
and this cache reads it at most every CLOSED_EVERYWHERE_WITHIN seconds, on the request that finds it
due: when it has moved, everything cached is dropped and read again. Closings are rare, so dropping all
is cheaper than knowing what changed. Within the process that closes, `changed()` drops it at once.

A read that began before a drop is not cached after it (an epoch counts the drops), so a session read
just before another process closed it stays at most until the next look at the mark.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from perfmon.domain.ports import CLOSED_EVERYWHERE_WITHIN

Value = TypeVar("Value")


class SessionCache(Generic[Value]):
    """An LRU of at most `limit` values by key, dropped whenever `read_mark()` answers something new.

    `read_mark` reads the storage's change mark (any comparable value); it may raise StorageUnavailable,
    which the get() that was due to look passes on. `monotonic` is injected for tests."""

    def __init__(
        self,
        read_mark: Callable[[], Hashable],
        limit: int,
        max_staleness: float = CLOSED_EVERYWHERE_WITHIN,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read_mark = read_mark
        self._limit = limit
        self._max_staleness = max_staleness
        self._monotonic = monotonic
        self._values: OrderedDict[str, Value] = OrderedDict()
        self._lock = threading.Lock()
        # The mark as last read, and when that read began (None: never read).
        self._mark: Hashable = None
        self._looked_at: float | None = None
        # Counts the drops: a read that began in an earlier epoch is not cached.
        self._epoch = 0

    def get(self, key: str, load: Callable[[str], Value | None]) -> Value | None:
        """The cached value of the key, or load(key) (cached unless None, or unless the cache was
        dropped while it loaded)."""
        self._look_at_mark_if_due()
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
                return value
            epoch = self._epoch
        value = load(key)
        if value is not None:
            with self._lock:
                if epoch == self._epoch:
                    self._values[key] = value
                    if len(self._values) > self._limit:
                        self._values.popitem(last=False)
        return value

    def changed(self) -> None:
        """This process closed something: drop every value now (call it after the change is stored)."""
        with self._lock:
            self._drop()

    def _look_at_mark_if_due(self) -> None:
        now = self._monotonic()
        if self._looked_at is not None and now - self._looked_at < self._max_staleness:
            return
        # Threads due at once each read the mark: it is one small read, and none waits on another.
        mark = self._read_mark()
        with self._lock:
            if mark != self._mark:
                self._drop()
                self._mark = mark
            # From when this look began: what was closed before it is seen by it.
            if self._looked_at is None or now > self._looked_at:
                self._looked_at = now

    def _drop(self) -> None:
        self._values.clear()
        self._epoch += 1
