"""SessionCache: what a process may go on accepting after another process closed a session."""

from __future__ import annotations

import pytest

from perfmon.adapters.session_cache import SessionCache
from perfmon.domain.errors import StorageUnavailable
from perfmon.domain.ports import CLOSED_EVERYWHERE_WITHIN


class Storage:
    """A storage as a second process changes it: values by key, and a change mark moved by each change."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {"a": "open"}
        self.mark = 0
        self.mark_reads = 0
        self.loads = 0
        self.down = False

    def close(self, key: str) -> None:
        self.values[key] = "closed"
        self.mark += 1

    def read_mark(self) -> int:
        if self.down:
            raise StorageUnavailable("the database is down")
        self.mark_reads += 1
        return self.mark

    def load(self, key: str) -> str | None:
        self.loads += 1
        return self.values.get(key)


class Monotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def storage() -> Storage:
    return Storage()


@pytest.fixture
def monotonic() -> Monotonic:
    return Monotonic()


@pytest.fixture
def cache(storage: Storage, monotonic: Monotonic) -> SessionCache[str]:
    return SessionCache(storage.read_mark, limit=3, monotonic=monotonic)


def test_a_hit_loads_nothing_and_reads_the_mark_at_most_once_per_interval(
    cache: SessionCache[str], storage: Storage, monotonic: Monotonic
) -> None:
    for _ in range(100):
        assert cache.get("a", storage.load) == "open"
        monotonic.now += CLOSED_EVERYWHERE_WITHIN / 10
    assert storage.loads == 1
    # 100 gets over 10 intervals: the mark is looked at about once an interval, never more.
    assert storage.mark_reads <= 11


def test_a_change_elsewhere_is_seen_once_the_interval_has_passed(
    cache: SessionCache[str], storage: Storage, monotonic: Monotonic
) -> None:
    assert cache.get("a", storage.load) == "open"
    storage.close("a")
    monotonic.now += CLOSED_EVERYWHERE_WITHIN * 0.9
    assert cache.get("a", storage.load) == "open"
    monotonic.now += CLOSED_EVERYWHERE_WITHIN * 0.1
    assert cache.get("a", storage.load) == "closed"


def test_a_change_in_this_process_is_seen_at_once(
    cache: SessionCache[str], storage: Storage, monotonic: Monotonic
) -> None:
    assert cache.get("a", storage.load) == "open"
    storage.values["a"] = "closed"
    cache.changed()
    assert cache.get("a", storage.load) == "closed"


def test_a_load_that_began_before_a_drop_is_not_cached(
    cache: SessionCache[str], storage: Storage, monotonic: Monotonic
) -> None:
    # The load reads the open session; while it runs, this process closes it and drops the cache.
    def load_racing_a_close(key: str) -> str | None:
        found = storage.load(key)
        storage.values[key] = "closed"
        cache.changed()
        return found

    assert cache.get("a", load_racing_a_close) == "open"
    assert cache.get("a", storage.load) == "closed"


def test_absent_keys_are_not_cached(cache: SessionCache[str], storage: Storage) -> None:
    assert cache.get("b", storage.load) is None
    storage.values["b"] = "open"
    assert cache.get("b", storage.load) == "open"


def test_the_least_recently_used_value_makes_room(cache: SessionCache[str], storage: Storage) -> None:
    storage.values.update(b="open", c="open", d="open")
    for key in "abc":
        cache.get(key, storage.load)
    cache.get("a", storage.load)  # a is now the most recent
    cache.get("d", storage.load)  # b goes
    loads = storage.loads
    for key in "acd":
        cache.get(key, storage.load)
    assert storage.loads == loads
    cache.get("b", storage.load)
    assert storage.loads == loads + 1


def test_a_mark_that_cannot_be_read_fails_the_get_and_is_read_again_next_time(
    cache: SessionCache[str], storage: Storage, monotonic: Monotonic
) -> None:
    assert cache.get("a", storage.load) == "open"
    storage.close("a")
    storage.down = True
    monotonic.now += CLOSED_EVERYWHERE_WITHIN
    # Never an answer from a cache it could not check: the caller answers 503 and retries.
    with pytest.raises(StorageUnavailable):
        cache.get("a", storage.load)
    storage.down = False
    assert cache.get("a", storage.load) == "closed"
