"""Reductions of sample lists that storages without a query engine (memory, files) share."""

from __future__ import annotations

import math

from perfmon.domain.model import NO_SAMPLES, Bucket, SampleSeries, SampleSummary, bucket_start


def downsample(samples: SampleSeries, step: float) -> list[Bucket]:
    """One Bucket per step-wide slice of time that holds samples, oldest first."""
    slices: dict[float, list[float]] = {}
    for cpu, moment in zip(samples.cpu, samples.taken_at, strict=True):
        slices.setdefault(bucket_start(moment, step), []).append(cpu)
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


def summarize(samples: SampleSeries) -> SampleSummary:
    """Count and earliest and latest time of the samples."""
    times = samples.taken_at
    return SampleSummary(len(times), min(times), max(times)) if times else NO_SAMPLES
