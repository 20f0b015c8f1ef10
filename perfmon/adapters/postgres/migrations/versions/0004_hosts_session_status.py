"""Hosts and the session status (issue 12): sessions.host, and the status that GET /hosts sums up.

sessions gains `host` (None for every existing session: they were opened before hosts) and the status
columns `seen` and `first`; series gains its latest sample (`latest_value`, `latest_at`, and `latest_id`,
the samples.id that orders equal times). The status of existing sessions is computed from what they
hold, exactly as appends would have left it: per series the sample with the greatest time (of equal
times the greatest id), and per session the earliest time of its raw samples and day rollups. `seen`, the
server's clock at a write, was never recorded: it stays None until the session's next write.

A series whose raw samples were all pruned by retention keeps no latest value (its rollups have none),
and a session none of whose series has one keeps no status, as a session without samples.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

# One backward probe of the samples' key (series_id, taken_at, id) per series and partition, rather than a
# scan of every sample: the latest sample of each series.
_LATEST_OF_EVERY_SERIES = """
UPDATE series SET latest_value = newest.value, latest_at = newest.taken_at, latest_id = newest.id
FROM series AS each_series
CROSS JOIN LATERAL (
    SELECT taken_at, id, value FROM samples WHERE samples.series_id = each_series.id
    ORDER BY taken_at DESC, id DESC LIMIT 1
) AS newest
WHERE series.id = each_series.id
"""
# The earliest time of each session with a latest sample: its raw samples' (a forward probe per series)
# and its day rollups' (which still hold what retention pruned of the raw samples).
_FIRST_OF_EVERY_SESSION = """
UPDATE sessions SET first = earliest.first
FROM (
    SELECT series.session_token, least(min(oldest.taken_at), min(days.first_at)) AS first
    FROM series
    LEFT JOIN LATERAL (
        SELECT taken_at FROM samples WHERE samples.series_id = series.id ORDER BY taken_at LIMIT 1
    ) AS oldest ON true
    LEFT JOIN LATERAL (
        SELECT min(first_at) AS first_at FROM rollups WHERE rollups.series_id = series.id AND width = 86400
    ) AS days ON true
    GROUP BY series.session_token
    HAVING bool_or(series.latest_at IS NOT NULL)
) AS earliest
WHERE sessions.token = earliest.session_token
"""


def upgrade() -> None:
    """Add the columns, then compute the status of every session from its samples."""
    # Spelled out rather than taken from tables.py, as in 0001..0003. Columns that allow NULL are added
    # without rewriting the tables.
    op.add_column("sessions", sa.Column("host", sa.Text(), nullable=True))
    op.add_column("sessions", sa.Column("seen", sa.Double(), nullable=True))
    op.add_column("sessions", sa.Column("first", sa.Double(), nullable=True))
    op.add_column("series", sa.Column("latest_value", sa.Double(), nullable=True))
    op.add_column("series", sa.Column("latest_at", sa.Double(), nullable=True))
    op.add_column("series", sa.Column("latest_id", sa.BigInteger(), nullable=True))
    op.execute(_LATEST_OF_EVERY_SERIES)
    op.execute(_FIRST_OF_EVERY_SESSION)


def downgrade() -> None:
    """Drop the columns: the sessions' hosts and status are lost, their samples kept (a session of a
    host becomes a session like the original client's)."""
    for name in ("latest_id", "latest_at", "latest_value"):
        op.drop_column("series", name)
    for name in ("first", "seen", "host"):
        op.drop_column("sessions", name)
