"""Named series, samples partitioned by day, stored rollups: cpu_samples becomes the series `cpu`.

Every session with samples gets a series `cpu`; its samples move to the partitioned samples table with
their identities (the arrival order), into a partition per UTC day for the days of the last
_DAYS_PARTITIONED before the upgrade that hold samples, and into the default partition otherwise; their
rollups are computed exactly, in SQL; cpu_samples is dropped. Nothing is lost.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import datetime
import time

import sqlalchemy as sa
from alembic import context, op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_DAY = 86400.0
# Days before the upgrade whose samples get a partition of their own; older samples, and samples of days
# after the day after tomorrow (odd clocks), go to the default partition: an odd history can never make
# the upgrade create thousands of partitions.
_DAYS_PARTITIONED = 400
_DAYS_AHEAD = 2

# Spelled out rather than taken from the adapter (rollup_sql.py), as the DDL is: a revision must keep
# meaning what it meant when it was written. The rollups of every sample of the samples table, at the
# widths 60, 3600 and 86400 s: count, least and greatest value with flags for the zeros, first and last
# time, and the exact sum in units of 2^-1074 from each double's IEEE-754 bits, kept as
# total_mantissa * 2^total_shift with the least shift of the bucket's non-zero values (2046 for a zero
# sum); trunc() drops the 16 zero digits of fraction that power() gives.
_ROLL_UP_EVERY_SAMPLE = """
INSERT INTO rollups (
    series_id, width, start, count, low, high, first_at, last_at, negative_zero, positive_zero,
    total_mantissa, total_shift
)
SELECT series_id, width, start, samples, low, high, first_at, last_at, negative_zero, positive_zero,
    CASE WHEN units = 0 THEN 0 ELSE div(units, trunc(power(2::numeric, shift))) END,
    CASE WHEN units = 0 THEN 2046 ELSE shift END
FROM (
    SELECT series_id,
        CASE WHEN grouping(starts_60) = 0 THEN 60 WHEN grouping(starts_3600) = 0 THEN 3600
            WHEN grouping(starts_86400) = 0 THEN 86400 END AS width,
        coalesce(starts_60, starts_3600, starts_86400) AS start,
        sum(samples) AS samples, min(low) AS low, max(high) AS high, min(first_at) AS first_at,
        max(last_at) AS last_at, bool_or(negative_zero) AS negative_zero,
        bool_or(positive_zero) AS positive_zero,
        sum(CASE WHEN mantissa = 0 THEN 0 ELSE mantissa * trunc(power(2::numeric, shift)) END) AS units,
        min(shift) AS shift
    FROM (
        SELECT series_id, starts_60, starts_3600, starts_86400, count(*) AS samples,
            min(value) AS low, max(value) AS high, min(taken_at) AS first_at, max(taken_at) AS last_at,
            bool_or(value = 0 AND bits < 0) AS negative_zero,
            bool_or(value = 0 AND bits >= 0) AS positive_zero,
            (sum(bits & 4503599627370495)
                + CASE WHEN exponent > 0 THEN count(*)::numeric * 4503599627370496 ELSE 0 END)
                * CASE WHEN negative THEN -1 ELSE 1 END AS mantissa,
            CASE WHEN exponent = 0 AND sum(bits & 4503599627370495) = 0 THEN 2046
                ELSE greatest(exponent, 1) - 1 END AS shift
        FROM (
            SELECT series_id, taken_at, value, bits, ((bits >> 52) & 2047)::integer AS exponent,
                bits < 0 AS negative,
                CASE WHEN taken_at < 60.0::float8 THEN 0::float8
                    ELSE floor(taken_at / 60.0::float8) * 60.0::float8 END AS starts_60,
                CASE WHEN taken_at < 3600.0::float8 THEN 0::float8
                    ELSE floor(taken_at / 3600.0::float8) * 3600.0::float8 END AS starts_3600,
                CASE WHEN taken_at < 86400.0::float8 THEN 0::float8
                    ELSE floor(taken_at / 86400.0::float8) * 86400.0::float8 END AS starts_86400
            FROM (
                SELECT series_id, taken_at, value,
                    ('x' || encode(float8send(value), 'hex'))::bit(64)::bigint AS bits
                FROM samples
            ) AS values_with_bits
        ) AS placed
        GROUP BY series_id, starts_60, starts_3600, starts_86400, exponent, negative
    ) AS by_exponent
    GROUP BY GROUPING SETS ((series_id, starts_60), (series_id, starts_3600), (series_id, starts_86400))
) AS buckets
ORDER BY series_id, width, start
"""


def upgrade() -> None:
    """Create series, samples (with its default partition) and rollups; move cpu_samples into them."""
    # An older perfmon may still be serving: its writes wait until the upgrade commits, then fail on the
    # missing table, rather than land in cpu_samples after it was copied.
    op.execute("LOCK TABLE cpu_samples IN EXCLUSIVE MODE")
    op.create_table(
        "series",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("session_token", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_series"),
        sa.ForeignKeyConstraint(
            ["session_token"], ["sessions.token"], name="fk_series_session_token_sessions"
        ),
        sa.UniqueConstraint("session_token", "metric", name="uq_series_session_token_metric"),
    )
    op.create_table(
        "samples",
        sa.Column("series_id", sa.BigInteger(), nullable=False),
        sa.Column("taken_at", sa.Double(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("series_id", "taken_at", "id", name="pk_samples"),
        postgresql_partition_by="RANGE (taken_at)",
    )
    op.execute("CREATE TABLE samples_default PARTITION OF samples DEFAULT")
    op.create_table(
        "rollups",
        sa.Column("series_id", sa.BigInteger(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("total_shift", sa.Integer(), nullable=False),
        sa.Column("start", sa.Double(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("low", sa.Double(), nullable=False),
        sa.Column("high", sa.Double(), nullable=False),
        sa.Column("first_at", sa.Double(), nullable=False),
        sa.Column("last_at", sa.Double(), nullable=False),
        sa.Column("negative_zero", sa.Boolean(), nullable=False),
        sa.Column("positive_zero", sa.Boolean(), nullable=False),
        sa.Column("total_mantissa", sa.Numeric(), nullable=False),
        sa.PrimaryKeyConstraint("series_id", "width", "start", name="pk_rollups"),
        sa.ForeignKeyConstraint(["series_id"], ["series.id"], name="fk_rollups_series_id_series"),
    )
    op.create_index("ix_rollups_start", "rollups", ["start"])

    op.execute(
        "INSERT INTO series (session_token, metric) "
        "SELECT DISTINCT session_token, 'cpu' FROM cpu_samples ORDER BY session_token"
    )
    _partition_the_days_with_samples()
    # The identities come along: they are the arrival order that orders samples taken at equal times.
    op.execute(
        "INSERT INTO samples (series_id, taken_at, id, value) OVERRIDING SYSTEM VALUE "
        "SELECT series.id, cpu_samples.taken_at, cpu_samples.id, cpu_samples.cpu FROM cpu_samples "
        "JOIN series ON series.session_token = cpu_samples.session_token AND series.metric = 'cpu'"
    )
    op.execute("SELECT setval(pg_get_serial_sequence('samples', 'id'), max(id)) FROM samples")
    op.execute(_ROLL_UP_EVERY_SAMPLE)
    op.drop_table("cpu_samples")


def _partition_the_days_with_samples() -> None:
    # The upgrade's time, which schema.upgrade_to_head passes on (a test sets it), else the clock's.
    now = context.config.attributes.get("now") or time.time()
    today = (now // _DAY) * _DAY
    earliest, latest = today - _DAYS_PARTITIONED * _DAY, today + _DAYS_AHEAD * _DAY
    days = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT DISTINCT floor(taken_at / 86400.0) * 86400.0 AS day FROM cpu_samples "
                "WHERE taken_at >= :earliest AND taken_at < :latest ORDER BY day"
            ),
            {"earliest": earliest, "latest": latest + _DAY},
        )
        .scalars()
    )
    for day in days:
        name = "samples_p" + datetime.datetime.fromtimestamp(day, datetime.UTC).strftime("%Y%m%d")
        op.execute(f"CREATE TABLE {name} PARTITION OF samples FOR VALUES FROM ({day!r}) TO ({day + _DAY!r})")


def downgrade() -> None:
    """Back to cpu_samples: the raw samples of the series `cpu` with their identities. Other series,
    and what only rollups kept (raw samples pruned by retention), are lost."""
    op.create_table(
        "cpu_samples",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("session_token", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("taken_at", sa.Double(), nullable=False),
        sa.Column("cpu", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cpu_samples"),
        sa.ForeignKeyConstraint(
            ["session_token"], ["sessions.token"], name="fk_cpu_samples_session_token_sessions"
        ),
    )
    op.execute(
        "INSERT INTO cpu_samples (id, session_token, taken_at, cpu) OVERRIDING SYSTEM VALUE "
        "SELECT samples.id, series.session_token, samples.taken_at, samples.value FROM samples "
        "JOIN series ON series.id = samples.series_id WHERE series.metric = 'cpu'"
    )
    op.execute("SELECT setval(pg_get_serial_sequence('cpu_samples', 'id'), max(id)) FROM cpu_samples")
    op.create_index(
        "ix_cpu_samples_session_token_taken_at_id", "cpu_samples", ["session_token", "taken_at", "id"]
    )
    op.drop_table("rollups")
    # Its partitions go with it.
    op.drop_table("samples")
    op.drop_table("series")
