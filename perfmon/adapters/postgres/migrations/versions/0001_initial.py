"""The initial schema: users, their sessions and the sessions' CPU samples.

Revision ID: 0001
Revises:
Create Date: 2024-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    """Create the three tables and the indexes that the repositories' queries use."""
    # Spelled out rather than taken from tables.py: a revision must keep meaning what it meant
    # when it was written, while tables.py moves on with later revisions.
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_table(
        "sessions",
        sa.Column("token", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("token", name="pk_sessions"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_sessions_user_id_users"),
    )
    op.create_index("ix_sessions_user_id_created_at", "sessions", ["user_id", "created_at"])
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
    op.create_index(
        "ix_cpu_samples_session_token_taken_at_id", "cpu_samples", ["session_token", "taken_at", "id"]
    )


def downgrade() -> None:
    """Drop everything, dependants first."""
    op.drop_table("cpu_samples")
    op.drop_table("sessions")
    op.drop_table("users")
