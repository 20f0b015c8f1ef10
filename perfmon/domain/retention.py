"""Retention: how long raw samples and rollups are kept, and the pruning that enforces it."""

from __future__ import annotations

from dataclasses import dataclass

from perfmon.domain.ports import Clock, HistoryMaintenance, PruneReport


@dataclass(frozen=True)
class RetentionPolicy:
    """How many seconds raw samples and rollups are kept; None keeps them for ever (the default: a
    monitoring server deletes nothing that its operator did not ask it to delete).

    Rollups outlive the raw samples they sum up (a `step` read of a pruned range answers from them), so
    they are kept at least as long: ValueError otherwise."""

    raw: float | None = None
    rollups: float | None = None

    def __post_init__(self) -> None:
        for kept in (self.raw, self.rollups):
            if kept is not None and not kept > 0:
                raise ValueError("a retention must be a positive number of seconds")
        if self.rollups is not None and (self.raw is None or self.rollups < self.raw):
            raise ValueError("rollups must be kept at least as long as raw samples")

    @property
    def keeps_everything(self) -> bool:
        """True when nothing is ever pruned."""
        return self.raw is None and self.rollups is None

    def cutoffs(self, now: float) -> tuple[float | None, float | None]:
        """The times before which raw samples and rollups go, at time `now` (seconds since the epoch)."""
        return (
            None if self.raw is None else now - self.raw,
            None if self.rollups is None else now - self.rollups,
        )


class Retention:
    """Keeps a storage's history within its policy: the server's timer and `perfmon prune` call it."""

    def __init__(self, policy: RetentionPolicy, maintenance: HistoryMaintenance, clock: Clock) -> None:
        self._policy = policy
        self._maintenance = maintenance
        self._clock = clock

    @property
    def policy(self) -> RetentionPolicy:
        """The policy being enforced."""
        return self._policy

    def prune(self, apply: bool) -> PruneReport:
        """Drop (apply=True) or only report (apply=False) what the policy no longer keeps. Rollups are
        brought up to date first: raw samples are only ever dropped once summed up."""
        now = self._clock()
        self._maintenance.maintain(now)
        if self._policy.keeps_everything:
            return PruneReport(applied=apply)
        return self._maintenance.prune(*self._policy.cutoffs(now), apply=apply)

    def run_once(self) -> PruneReport:
        """One pass of the server's background job: maintenance, then pruning by the policy."""
        return self.prune(apply=True)
