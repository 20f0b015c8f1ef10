"""Buckets: the one definition of a bucket's figures that every storage follows, and the reduction of
sample lists that storages without a query engine (memory, files) share.

A bucket's mean is the exact mean of its samples (the doubles as stored, each an exact binary value),
rounded once to the nearest double. Every double is a whole number of 2^-1074 (the least subnormal),
so the sum is kept exact as an integer count of those units; a query engine that sums the same integers
(PostgreSQL's numeric) and this module give the same bucket bit for bit, whatever the values: 0 next
to 1e300, subnormals, the largest double.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import NamedTuple

from perfmon.domain.model import NO_SAMPLES, Bucket, SampleSeries, SampleSummary, bucket_start

# The exponent of the least subnormal double: a double's value is an integer times 2^-1074.
UNIT_EXPONENT = 1074


def units(value: float) -> int:
    """The double's exact value in units of 2^-1074 (an integer; exact for every finite double)."""
    numerator, denominator = value.as_integer_ratio()
    # The denominator is 2^k with k <= 1074.
    return numerator << (UNIT_EXPONENT + 1 - denominator.bit_length())


def exact_sum(values: Sequence[float]) -> int:
    """The exact sum of the values, in units of 2^-1074."""
    try:
        # math.fsum rounds the exact sum once; what it leaves out is again a sum of doubles that it
        # rounds in turn, until nothing is left: a few passes at C speed instead of a big integer per
        # value (typically two: the sum of a million values of 0..100 spans under 100 bits).
        parts: list[float] = []
        while part := math.fsum(itertools.chain(values, (-p for p in parts))):
            parts.append(part)
        return sum(map(units, parts))
    except OverflowError:
        # Sums past the largest double (values near it) overflow fsum's doubles: add the integers.
        return sum(map(units, values))


def zeros_ordered(low: float, high: float, negative_zero: bool, positive_zero: bool) -> tuple[float, float]:
    """A bucket's least and greatest value with -0.0 below 0.0, from a plain min and max (which take
    the two zeros as equal and return either) and whether the bucket holds a -0.0 and a 0.0.

    Ordering the zeros makes the figures independent of the order a storage visits the samples in.
    """
    if low == 0:
        low = -0.0 if negative_zero else 0.0
    if high == 0:
        high = 0.0 if positive_zero else -0.0
    return low, high


def bucket_mean(total: int, count: int, low: float, high: float) -> float:
    """The mean of count samples summing to total units of 2^-1074, rounded once to the nearest double
    (Python's int division is correctly rounded), within [low, high].

    Samples all equal give that very value back (-0.0 included). As rounding is monotonic the mean
    cannot leave [low, high]; the clamp only guards that.
    """
    if low == high and math.copysign(1.0, low) == math.copysign(1.0, high):
        return low
    mean = total / (count << UNIT_EXPONENT)
    if mean < low:
        return low
    return high if mean > high else mean


class BucketTotals(NamedTuple):
    """What a bucket's figures follow from, exact and mergeable: the totals of two sets of samples in
    one bucket add up to the totals of their union (stored rollups can keep these)."""

    start: float
    # Shadows tuple.count(), which nothing here calls: the field's name is the domain's word.
    count: int  # type: ignore[assignment]
    # The exact sum of the samples, in units of 2^-1074 (see exact_sum).
    total: int
    # The least and greatest sample, -0.0 below 0.0 (see zeros_ordered).
    low: float
    high: float

    @classmethod
    def of(cls, start: float, values: Sequence[float]) -> BucketTotals:
        """The totals of the (non-empty) values of the bucket that starts at start."""
        low, high = min(values), max(values)
        if low == 0 or high == 0:
            signs = {math.copysign(1.0, value) for value in values if value == 0}
            low, high = zeros_ordered(low, high, -1.0 in signs, 1.0 in signs)
        return cls(start, len(values), exact_sum(values), low, high)

    def merged(self, other: BucketTotals) -> BucketTotals:
        """The totals of both sets of samples, which must lie in the same bucket."""
        if other.start != self.start:
            raise ValueError("only totals of the same bucket merge")
        low = min(self.low, other.low, key=_zeros_ordered_key)
        high = max(self.high, other.high, key=_zeros_ordered_key)
        return BucketTotals(self.start, self.count + other.count, self.total + other.total, low, high)

    def bucket(self) -> Bucket:
        """The bucket's figures: mean, minimum, maximum and count."""
        mean = bucket_mean(self.total, self.count, self.low, self.high)
        return Bucket(self.start, mean, self.low, self.high, self.count)


def _zeros_ordered_key(value: float) -> tuple[float, float]:
    return value, math.copysign(1.0, value)


def bucket_totals(samples: SampleSeries, step: float) -> list[BucketTotals]:
    """The exact totals of each step-wide slice of time that holds samples, oldest first."""
    slices: dict[float, list[float]] = {}
    for value, moment in zip(samples.values, samples.taken_at, strict=True):
        slices.setdefault(bucket_start(moment, step), []).append(value)
    return [BucketTotals.of(start, values) for start, values in sorted(slices.items())]


def downsample(samples: SampleSeries, step: float) -> list[Bucket]:
    """One Bucket per step-wide slice of time that holds samples, oldest first."""
    return [totals.bucket() for totals in bucket_totals(samples, step)]


def summarize(samples: SampleSeries) -> SampleSummary:
    """Count and earliest and latest time of the samples."""
    times = samples.taken_at
    return SampleSummary(len(times), min(times), max(times)) if times else NO_SAMPLES
