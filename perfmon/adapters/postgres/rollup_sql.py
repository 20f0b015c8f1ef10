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
sign: sum(bigint) is an exact numeric, the mantissa of the group, and exponent - 1 its shift. A bucket
keeps its total as total_mantissa * 2^total_shift (tables.py) with the least shift of its non-zero
groups, so that everyday values make mantissas of a few dozen bits instead of 300-digit numbers; a
total of zero has the shift ZERO_SHIFT, above every other, so that it never lowers one when merged.
Samples are grouped once for all widths: a bucket of every width is a union of those groups.

power() gives 2^k a fraction of 16 zero digits: trunc() keeps every figure a whole number.

min() and max() take -0.0 and 0.0 as equal and return either: the flags say which zeros a bucket holds,
and downsampling.zeros_ordered() orders them when the bucket is read.
"""

from __future__ import annotations

from perfmon.domain.downsampling import UNIT_EXPONENT
from perfmon.domain.rollups import ROLLUP_WIDTHS

_FRACTION_MASK = 2**52 - 1
_IMPLICIT_BIT = 2**52
# Above the shift of any double (at most 2045): the shift of a zero total.
ZERO_SHIFT = 2046


def _start(width: float) -> str:
    """bucket_start(taken_at, width) in float8 arithmetic (a bare 60.0 would be a numeric)."""
    w = f"{width!r}::float8"
    return f"CASE WHEN taken_at < {w} THEN 0::float8 ELSE floor(taken_at / {w}) * {w} END"


def _scaled(mantissa: str, shift: str, least: str) -> str:
    """The whole number mantissa * 2^(shift - least), exactly."""
    return f"{mantissa} * trunc(power(2::numeric, {shift} - {least}))"


# One column per width, the bucket's start at that width: starts_60, starts_3600, starts_86400.
_COLUMNS = {f"starts_{int(width)}": width for width in ROLLUP_WIDTHS}
_STARTS = list(_COLUMNS)


_LEAST = "least(stored.total_shift, excluded.total_shift)"
# Adds the rows inserted to the stored buckets of their keys (rows in key order: see the module's docstring).
_ADDED_TO_STORED = f"""ON CONFLICT (series_id, width, start) DO UPDATE SET
    count = stored.count + excluded.count,
    low = least(stored.low, excluded.low),
    high = greatest(stored.high, excluded.high),
    first_at = least(stored.first_at, excluded.first_at),
    last_at = greatest(stored.last_at, excluded.last_at),
    negative_zero = stored.negative_zero OR excluded.negative_zero,
    positive_zero = stored.positive_zero OR excluded.positive_zero,
    total_mantissa = {_scaled("stored.total_mantissa", "stored.total_shift", _LEAST)}
        + {_scaled("excluded.total_mantissa", "excluded.total_shift", _LEAST)},
    total_shift = {_LEAST}
"""


def merge_into_rollups(source: str) -> str:
    """The statement that adds the samples of the relation `source` (a trusted name, never data: columns
    series_id, taken_at, value) to the stored rollups of every width.

    The samples are summed once, per series, bucket of every width, exponent and sign; grouping sets
    then add those partial sums up per bucket of each width."""
    starts = ",\n                ".join(f"{_start(width)} AS {name}" for name, width in _COLUMNS.items())
    width = " ".join(f"WHEN grouping({name}) = 0 THEN {int(w)}" for name, w in _COLUMNS.items())
    sets = ", ".join(f"(series_id, {name})" for name in _STARTS)
    return f"""
INSERT INTO rollups AS stored (
    series_id, width, start, count, low, high, first_at, last_at, negative_zero, positive_zero,
    total_mantissa, total_shift
)
SELECT series_id, width, start, samples, low, high, first_at, last_at, negative_zero, positive_zero,
    CASE WHEN units = 0 THEN 0 ELSE div(units, trunc(power(2::numeric, shift))) END,
    CASE WHEN units = 0 THEN {ZERO_SHIFT} ELSE shift END
FROM (
    SELECT series_id, CASE {width} END AS width, coalesce({", ".join(_STARTS)}) AS start,
        sum(samples) AS samples, min(low) AS low, max(high) AS high, min(first_at) AS first_at,
        max(last_at) AS last_at, bool_or(negative_zero) AS negative_zero,
        bool_or(positive_zero) AS positive_zero,
        sum(CASE WHEN mantissa = 0 THEN 0 ELSE mantissa * trunc(power(2::numeric, shift)) END) AS units,
        min(shift) AS shift
    FROM (
        SELECT series_id, {", ".join(_STARTS)}, count(*) AS samples, min(value) AS low, max(value) AS high,
            min(taken_at) AS first_at, max(taken_at) AS last_at,
            bool_or(value = 0 AND bits < 0) AS negative_zero,
            bool_or(value = 0 AND bits >= 0) AS positive_zero,
            (sum(bits & {_FRACTION_MASK})
                + CASE WHEN exponent > 0 THEN count(*)::numeric * {_IMPLICIT_BIT} ELSE 0 END)
                * CASE WHEN negative THEN -1 ELSE 1 END AS mantissa,
            CASE WHEN exponent = 0 AND sum(bits & {_FRACTION_MASK}) = 0 THEN {ZERO_SHIFT}
                ELSE greatest(exponent, 1) - 1 END AS shift
        FROM (
            SELECT series_id, taken_at, value, bits, ((bits >> 52) & 2047)::integer AS exponent,
                bits < 0 AS negative,
                {starts}
            FROM (
                SELECT series_id, taken_at, value,
                    ('x' || encode(float8send(value), 'hex'))::bit(64)::bigint AS bits
                FROM {source}
            ) AS values_with_bits
        ) AS placed
        GROUP BY series_id, {", ".join(_STARTS)}, exponent, negative
    ) AS by_exponent
    GROUP BY GROUPING SETS ({sets})
) AS buckets
ORDER BY series_id, width, start
{_ADDED_TO_STORED}"""  # noqa: S608 - `source` is a name, never data


def insert_each_into_rollups(source: str) -> str:
    """The statement that adds the samples of the relation `source` (a trusted name, never data: columns
    series_id, taken_at, value, and the value's exact total as value_total() gives it: mantissa, shift)
    to the stored rollups of every width, when no two of its samples are of one series.

    Each sample is then its bucket's only one, in every width: a row per sample and width, without
    the summing of merge_into_rollups (a third of a single-sample write's cost in the database)."""
    starts = " ".join(f"WHEN {int(width)} THEN {_start(width)}" for width in ROLLUP_WIDTHS)
    widths = ", ".join(f"({int(width)})" for width in ROLLUP_WIDTHS)
    # The sign bit of a zero, which comparisons ignore: float8send gives the IEEE-754 bytes, big-endian.
    negative = "get_byte(float8send(value), 0) >= 128"
    return f"""
INSERT INTO rollups AS stored (
    series_id, width, start, count, low, high, first_at, last_at, negative_zero, positive_zero,
    total_mantissa, total_shift
)
SELECT series_id, width, CASE width {starts} END AS start, 1, value, value, taken_at, taken_at,
    value = 0 AND {negative}, value = 0 AND NOT {negative}, mantissa, shift
FROM {source} CROSS JOIN (VALUES {widths}) AS widths (width)
ORDER BY series_id, width, start
{_ADDED_TO_STORED}"""  # noqa: S608 - `source` is a name, never data


def value_total(value: float) -> tuple[int, int]:
    """The exact total of the one (finite) value as the rollups table keeps it, (mantissa, shift): the
    value is mantissa * 2^shift units of 2^-1074 (downsampling.units), and a zero is (0, ZERO_SHIFT)."""
    if value == 0:
        return 0, ZERO_SHIFT
    numerator, denominator = value.as_integer_ratio()
    # The denominator is 2^k, k <= 1074: value = numerator * 2^(1074 - k) units.
    return numerator, UNIT_EXPONENT + 1 - denominator.bit_length()
