"""The original PerformanceMonitor's data as the legacy import consumes it, whatever format it came from."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from perfmon.domain.errors import PerfmonError


class LegacySourceUnreadable(PerfmonError):
    """The original's data cannot be read (missing, not its format, or the database is unreachable)."""


@dataclass(frozen=True)
class LegacySample:
    """One sample as the original stored it, not yet checked against perfmon's rules."""

    cpu: float
    time: float


@dataclass(frozen=True)
class LegacySession:
    """A session hash as the original wrote it; its samples are read only when it gets imported."""

    token: str
    samples: Iterable[LegacySample]


@dataclass(frozen=True)
class LegacyUser:
    """A user of the original: its name, its clear-text password (never shown) and its sessions."""

    name: str
    password: str = field(repr=False)
    sessions: Iterable[LegacySession]


class LegacySource(Protocol):
    """The original's data, one user at a time, each user's sessions and samples read lazily."""

    def users(self) -> Iterator[LegacyUser]:
        """Every user in a stable order; raises LegacySourceUnreadable when reading fails."""

    @property
    def bad_lines(self) -> int:
        """How many lines or rows the source could not parse so far."""
