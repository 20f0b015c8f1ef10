"""Reading raw samples in bulk (GET /cpu, GET /samples): one row holding every sample's doubles as bytes.

A read of 100,000 samples as rows, or as two ordered array_agg()s, spends most of its time making and
parsing text (float8out on the server, a float() a number in psycopg2) and, for the arrays, sorting every
row again inside each aggregate (PostgreSQL before 16 sorts an ORDER BY aggregate's input whatever order
it comes in). Here the server gives the values and the times as two bytea columns, each double as its 8
bytes (float8send, big-endian): one row, no text, no Python object per row but its two floats, which a
few C loops of the standard library's arrays make. Every bit is kept (-0.0, subnormals, the largest
doubles), whatever the server's extra_float_digits.

The order. The aggregates read the rows of a subquery ordered by the key (time, then arrival), which the
key's index scans give without a sort, each row into both aggregates at once, so that the n-th value and
the n-th time are one row's. PostgreSQL aggregates the rows in the subquery's order, but only "usually"
by its documentation ("Aggregate Expressions"). So the answer is taken only when its times strictly
increase: then no two samples share a time and the key's order is the order of the times, whatever
the ids. Otherwise (equal times, or rows out of order) the samples are read again from aggregates with
ORDER BY taken_at, id, whose order PostgreSQL guarantees: a second statement, for series whose samples
share times (rare from agents, whose clocks give distinct times).
"""

from __future__ import annotations

import itertools
import operator
import sys
from array import array
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Connection, LargeBinary, func, literal, select, text
from sqlalchemy.dialects.postgresql import aggregate_order_by

from perfmon.adapters.postgres.tables import samples
from perfmon.domain.model import SampleSeries


def series_where(connection: Connection, conditions: Sequence[ColumnElement[bool]]) -> SampleSeries:
    """The samples (rows of `samples`) that meet the conditions, in the key's order: time, then arrival
    (id). Two statements in the connection's transaction, three when samples share a time (the module's
    docstring)."""
    # The key's index scans give the rows in its order. Without statistics (a new database, or a day's
    # partition not yet analyzed) the planner guesses a few hundred rows and sorts them instead, spilling
    # to disk: 100,000 rows 27 ms instead of 15 (PostgreSQL 15). For this transaction only.
    connection.execute(text("SET LOCAL enable_sort = off"))
    in_key_order = (samples.c.taken_at, samples.c.id)
    rows = select(samples.c.value, samples.c.taken_at).where(*conditions).order_by(*in_key_order).subquery()
    values, taken_at = connection.execute(select(_bytes(rows.c.value), _bytes(rows.c.taken_at))).one()
    found = in_time_order(values, taken_at)
    if found is not None:
        return found
    ordered = select(_bytes(samples.c.value, in_key_order), _bytes(samples.c.taken_at, in_key_order))
    values, taken_at = connection.execute(ordered.where(*conditions)).one()
    return SampleSeries(doubles_of(values), doubles_of(taken_at))


def _bytes(column: ColumnElement[float], order: Sequence[ColumnElement[float]] = ()) -> ColumnElement[bytes]:
    """string_agg of the column's doubles as 8 bytes each (float8send), in the order given if any."""
    nothing_between = literal(b"", LargeBinary)
    separator = aggregate_order_by(nothing_between, *order) if order else nothing_between
    return func.string_agg(func.float8send(column, type_=LargeBinary), separator, type_=LargeBinary)


def in_time_order(values: bytes | None, taken_at: bytes | None) -> SampleSeries | None:
    """The samples of the two columns' bytes (doubles_of) when their times strictly increase, else None.
    ValueError when the columns do not hold as many doubles."""
    series = SampleSeries(doubles_of(values), doubles_of(taken_at))
    if len(series.values) != len(series.taken_at):
        raise ValueError(f"{len(series.values)} values and {len(series.taken_at)} times")
    times = series.taken_at
    return series if all(map(operator.lt, times, itertools.islice(times, 1, None))) else None


def doubles_of(data: bytes | None) -> list[float]:
    """The big-endian doubles of the bytes, 8 bytes each; None (the aggregate of no rows) is none.
    ValueError when the bytes are no whole number of doubles."""
    doubles = array("d")
    if data is not None:
        if len(data) % doubles.itemsize:
            raise ValueError(f"{len(data)} bytes are no whole number of doubles")
        doubles.frombytes(data)
        if sys.byteorder == "little":
            doubles.byteswap()
    return doubles.tolist()
