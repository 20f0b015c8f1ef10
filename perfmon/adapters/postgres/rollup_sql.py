"""The SQL that rolls samples up into the rollups table, exactly as perfmon.domain.rollups.rollup() does.

One statement merges the samples of a relation (series_id, taken_at, value) into the stored buckets of
every width: it sums them per bucket, then adds those partial totals to the rows already stored (INSERT
... ON CONFLICT DO UPDATE). Rows are written in key order, so that writers in several processes lock
the rows they share in the same order and never deadlock.

A bucket's start is bucket_start(t, width) computed in IEEE-754 doubles, bit for bit as in Python: the
first bucket is spelt out, because Postgres's float8 division raises "value out of range: underflow"
where a quotient rounds to 0 (a subnormal time), and from the second bucket on the quotient is >= 1.

The sum is exact, in units of 2^-1074 as downsampling.exact_sum() counts it: float8 arithmetic
underflows, overflows and rounds, and float8::numeric keeps only 15 digits. A double's IEEE-754 bits
(float8send) give its value exactly: (2^52 + fraction) * 2^(exponent - 1) units, or fraction units when
the exponent is 0, negated when the sign bit is set. Values are first summed per bucket, exponent and
sign, where sum(bigint) is an exact numeric and 2^k is computed once per group.

min() and max() take -0.0 and 0.0 as equal and return either: the flags say which zeros a bucket holds,
and downsampling.zeros_ordered() orders them when the bucket is read.
"""

from __future__ import annotations

from perfmon.domain.rollups import ROLLUP_WIDTHS

_WIDTHS = ", ".join(f"({width!r}::float8)" for width in ROLLUP_WIDTHS)
_FRACTION_MASK = 2**52 - 1
_IMPLICIT_BIT = 2**52


def merge_into_rollups(source: str) -> str:
    """The statement that adds the samples of the relation `source` (a trusted name, never data: columns
    series_id, taken_at, value) to the stored rollups of every width."""
    return f"""
INSERT INTO rollups AS stored (
    series_id, width, start, count, low, high, first_at, last_at, negative_zero, positive_zero, total
)
SELECT series_id, width::integer, start, sum(samples), min(low), max(high), min(first_at), max(last_at),
    bool_or(negative_zero), bool_or(positive_zero), sum(units)
FROM (
    SELECT series_id, width, start, count(*) AS samples, min(value) AS low, max(value) AS high,
        min(taken_at) AS first_at, max(taken_at) AS last_at,
        bool_or(value = 0 AND bits < 0) AS negative_zero, bool_or(value = 0 AND bits >= 0) AS positive_zero,
        (sum(bits & {_FRACTION_MASK})
            + CASE WHEN exponent > 0 THEN count(*)::numeric * {_IMPLICIT_BIT} ELSE 0 END)
            * power(2::numeric, greatest(exponent, 1) - 1)
            * CASE WHEN negative THEN -1 ELSE 1 END AS units
    FROM (
        SELECT series_id, taken_at, value, bits, width, (bits >> 52) & 2047 AS exponent, bits < 0 AS negative,
            CASE WHEN taken_at < width THEN 0::float8 ELSE floor(taken_at / width) * width END AS start
        FROM (
            SELECT series_id, taken_at, value,
                ('x' || encode(float8send(value), 'hex'))::bit(64)::bigint AS bits
            FROM {source}
        ) AS values_with_bits
        CROSS JOIN (VALUES {_WIDTHS}) AS widths (width)
    ) AS placed
    GROUP BY series_id, width, start, exponent, negative
) AS by_exponent
GROUP BY series_id, width, start
ORDER BY series_id, width, start
ON CONFLICT (series_id, width, start) DO UPDATE SET
    count = stored.count + excluded.count,
    low = least(stored.low, excluded.low),
    high = greatest(stored.high, excluded.high),
    first_at = least(stored.first_at, excluded.first_at),
    last_at = greatest(stored.last_at, excluded.last_at),
    negative_zero = stored.negative_zero OR excluded.negative_zero,
    positive_zero = stored.positive_zero OR excluded.positive_zero,
    total = stored.total + excluded.total
"""  # noqa: S608 - `source` is a name, never data
