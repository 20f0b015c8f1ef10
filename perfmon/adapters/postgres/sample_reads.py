"""Reading raw samples in bulk (GET /cpu, GET /samples): one row of bytes holding every sample's doubles.

A read of 100,000 samples as rows, or as two ordered array_agg()s, spends most of its time making and
parsing text (float8out on the server, a float() a number in psycopg2) and, for the arrays, sorting every
row again inside each aggregate (PostgreSQL before 16 sorts an ORDER BY aggregate's input whatever order
it comes in). Here the server concatenates each sample's two doubles as their 8 bytes (float8send,
big-endian) into one bytea: one result, no text, no Python object per row but its two floats, which a
few C loops of the standard library's arrays make. Every bit is kept (-0.0, subnormals, the largest
doubles), whatever the server's extra_float_digits.

The order. The aggregate reads the rows of a subquery ordered by the key (time, then arrival), which the
key's index scans give without a sort; PostgreSQL aggregates them in that order, but only "usually" by
its documentation ("Aggregate Expressions"). So the answer is taken only when its times strictly
increase: then no two samples share a time and the key's order is the order of the times, whatever
the ids. Otherwise (equal times, or rows out of order) the samples are read again from the aggregate
with ORDER BY taken_at, id, whose order PostgreSQL guarantees: a second statement, for series whose
samples share times (rare from agents, whose clocks give distinct times).
"""

from __future__ import annotations

import itertools
import operator
import sys
from array import array
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Connection, LargeBinary, func, literal, select
from sqlalchemy.dialects.postgresql import aggregate_order_by

from perfmon.adapters.postgres.tables import samples
from perfmon.domain.model import SampleSeries

# A sample's bytes: its value, then its time, each a big-endian double.
_SAMPLE_BYTES = 16


def series_where(connection: Connection, conditions: Sequence[ColumnElement[bool]]) -> SampleSeries:
    """The samples (rows of `samples`) that meet the conditions, in the key's order: time, then arrival
    (id). One statement, two when some samples share a time (the module's docstring)."""
    in_key_order = (samples.c.taken_at, samples.c.id)
    # The rows narrow (two doubles) where they may be sorted: a sort that the planner chooses (a range
    # that is most of its partitions, no statistics yet) holds no bytes made from them.
    rows = select(samples.c.value, samples.c.taken_at).where(*conditions).order_by(*in_key_order).subquery()
    found = in_time_order(connection.execute(select(_concatenated(rows.c.value, rows.c.taken_at))).scalar())
    if found is not None:
        return found
    ordered = _concatenated(samples.c.value, samples.c.taken_at, in_key_order)
    return SampleSeries(*pairs_of(connection.execute(select(ordered).where(*conditions)).scalar()))


def _concatenated(
    value: ColumnElement[float], moment: ColumnElement[float], order: Sequence[ColumnElement[float]] = ()
) -> ColumnElement[bytes]:
    """string_agg of each row's value and time as 16 bytes (float8send), in the order given if any."""
    pair = func.float8send(value, type_=LargeBinary).op("||", return_type=LargeBinary)(
        func.float8send(moment, type_=LargeBinary)
    )
    nothing_between = literal(b"", LargeBinary)
    separator = aggregate_order_by(nothing_between, *order) if order else nothing_between
    return func.string_agg(pair, separator, type_=LargeBinary)


def in_time_order(data: bytes | None) -> SampleSeries | None:
    """The samples of the bytes when their times strictly increase, else None (pairs_of)."""
    values, taken_at = pairs_of(data)
    if all(map(operator.lt, taken_at, itertools.islice(taken_at, 1, None))):
        return SampleSeries(values, taken_at)
    return None


def pairs_of(data: bytes | None) -> tuple[list[float], list[float]]:
    """The values and times of samples given as 16 bytes each, (value, time) as big-endian doubles; None
    (the aggregate of no rows) is no sample. ValueError when the bytes are no whole number of samples."""
    doubles = array("d")
    if data is not None:
        if len(data) % _SAMPLE_BYTES:
            raise ValueError(f"{len(data)} bytes are no whole number of samples of {_SAMPLE_BYTES} bytes")
        doubles.frombytes(data)
        if sys.byteorder == "little":
            doubles.byteswap()
    return doubles[0::2].tolist(), doubles[1::2].tolist()
