"""What the agent measures and sends."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """One CPU reading: percent busy, and when it was taken (seconds since the Unix epoch)."""

    cpu: float
    taken_at: float
