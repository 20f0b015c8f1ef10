"""What the agent measures, keeps and learns from the server: plain values, no behaviour beyond checks."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

# PROTOCOL.md part 3's catalogue, which the agent sends every interval (`temp` only where the machine has
# sensors). The server's perfmon.domain.model.CATALOGUE names the same metrics (tests hold them equal);
# the agent keeps its own copy because it imports nothing of the server.
CATALOGUE = (
    "cpu", "mem", "swap", "load1", "load5", "load15", "disk",
    "disk_read", "disk_write", "net_rx", "net_tx", "temp",
)  # fmt: skip


@dataclass(frozen=True)
class Sample:
    """One reading of the machine: metric name -> value (PROTOCOL.md part 3: 1..64 metrics, finite values,
    units as in the catalogue), and when it was taken (seconds since the Unix epoch)."""

    metrics: Mapping[str, float]
    taken_at: float


@dataclass(frozen=True)
class Batch:
    """The oldest spooled samples, with where each one's line ends, to acknowledge them by."""

    samples: tuple[Sample, ...]
    ends: tuple[int, ...]
    segment: int


@dataclass(frozen=True)
class SpoolCounts:
    """Samples waiting to be sent, dropped for room (oldest first), and set aside as refused."""

    pending: int
    dropped: int
    quarantined: int


def redact(token: str) -> str:
    """A name for a session in a log: the first 8 hex digits of the SHA-256 of its hash, enough to tell
    sessions apart and no part of the hash itself (no secret in any log line, not even a prefix)."""
    return "#" + hashlib.sha256(token.encode()).hexdigest()[:8]
