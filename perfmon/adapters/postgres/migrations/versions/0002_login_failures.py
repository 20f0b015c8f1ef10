"""Failed-login counters shared by every perfmon process on the database.

Revision ID: 0002
Revises: 0001
Create Date: 2024-06-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    """Create the login_failures table and the index that pruning uses."""
    # Spelled out rather than taken from tables.py, as in 0001.
    op.create_table(
        "login_failures",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_login_failures"),
    )
    op.create_index("ix_login_failures_expires_at", "login_failures", ["expires_at"])


def downgrade() -> None:
    """Drop the counters: they only ever hold the last 15 minutes."""
    op.drop_table("login_failures")
