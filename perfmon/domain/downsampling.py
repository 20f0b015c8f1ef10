"""Reductions of sample lists that storages without a query engine (memory, files) share."""

from __future__ import annotations

import math
from collections.abc import Iterable

from perfmon.domain.model import NO_SAMPLES, Bucket, CpuSample, SampleSummary, bucket_start


def downsample(samples: Iterable[CpuSample], step: float) -> list[Bucket]:
    """One Bucket per step-wide slice of time that holds samples, oldest first."""
    slices: dict[float, list[float]] = {}
    for sample in samples:
        slices.setdefault(bucket_start(sample.taken_at, step), []).append(sample.cpu)
    return [
        Bucket(start=start, mean=_mean(cpus), low=min(cpus), high=max(cpus), count=len(cpus))
        for start, cpus in sorted(slices.items())
    ]


def _mean(cpus: list[float]) -> float:
    total = sum(cpus)
    if math.isfinite(total):
        return total / len(cpus)
    # Only values near the largest float overflow the plain sum; dividing first keeps the mean finite.
    return sum(cpu / len(cpus) for cpu in cpus)


def summarize(samples: Iterable[CpuSample]) -> SampleSummary:
    """Count and earliest and latest time of the samples."""
    times = [sample.taken_at for sample in samples]
    return SampleSummary(len(times), min(times), max(times)) if times else NO_SAMPLES
