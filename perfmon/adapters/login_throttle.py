"""The login throttle over the `limits` library: fixed windows counted in any limits storage."""

from __future__ import annotations

import hashlib
import math

from limits import RateLimitItemPerSecond
from limits.storage import Storage
from limits.strategies import FixedWindowRateLimiter

from perfmon.domain.errors import TooManyAttempts
from perfmon.domain.login_limits import LoginLimits
from perfmon.domain.model import Username
from perfmon.domain.ports import Clock, LoginThrottle


class LimitsLoginThrottle(LoginThrottle):
    """Counts failures in `limits` fixed windows: its MemoryStorage for one process, or a storage that
    every process shares (PostgreSQL).

    The windows are aligned to the clock (the n-th 15 minutes since the epoch) and the window's number
    is part of each counter's key, so the time that decides lives here, read from the injected clock,
    rather than in the storage (limits' storages read time.time() themselves): a test can move the clock
    past a window. The storage's own expiry only drops counters of windows that have passed.
    """

    def __init__(self, storage: Storage, clock: Clock, limits: LoginLimits | None = None) -> None:
        self._limits = limits or LoginLimits()
        self._limiter = FixedWindowRateLimiter(storage)
        window = self._limits.window_seconds
        self._per_name = RateLimitItemPerSecond(
            self._limits.per_name_and_address, window, namespace="perfmon-login-name"
        )
        self._per_address = RateLimitItemPerSecond(
            self._limits.per_address, window, namespace="perfmon-login-address"
        )
        self._clock = clock

    def check(self, name: Username | None, client: str) -> None:
        window = self._window()
        name_allowed = name is None or self._limiter.test(self._per_name, client, str(window), _digest(name))
        if not (name_allowed and self._limiter.test(self._per_address, client, str(window))):
            window_end = (window + 1) * self._limits.window_seconds
            raise TooManyAttempts(max(1, math.ceil(window_end - self._clock())))

    def record_failure(self, name: Username | None, client: str) -> None:
        window = self._window()
        if name is not None:
            self._limiter.hit(self._per_name, client, str(window), _digest(name))
        self._limiter.hit(self._per_address, client, str(window))

    def _window(self) -> int:
        return math.floor(self._clock() / self._limits.window_seconds)


def _digest(name: Username) -> str:
    # Keys join their parts with "/", which a name may hold: a digest keeps keys unambiguous, of one
    # length, and keeps names out of a shared table.
    return hashlib.sha256(name.value.encode("utf-8")).hexdigest()[:32]
