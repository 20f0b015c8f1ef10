"""Access keys and closed sessions (issue 13, PROTOCOL.md part 4).

Adds `access_keys` (a user's keys, kept by their SHA-256 digest; a revoked one stays, with its
`revoked_at`, as its sessions refer to it), and `access_changes`, the one-row change mark that every
logout and revocation moves in its own transaction (session_cache.SessionCache). `sessions` gains
`scope` ('all' for a password login, else its key's), `key_id` (the key that opened it) and `closed_at`
(when it was logged out or its key revoked). Every existing session was opened with a password: it
becomes scope 'all', no key, open, as it was. Adding a column with a constant default, or one that
allows NULL, rewrites no table.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

# The downgrade's release knows neither scopes nor logouts: it would take a logged-out token, or a token
# that an ingest or read key opened, as a session that may do everything. So such sessions are given a
# fresh random token (gen_random_uuid, PostgreSQL 13 and later) that nobody holds, and their series move
# with them: their samples stay, read through the user's other sessions, as PROTOCOL.md part 4 keeps them.
# A series refers to its session, so each one is copied under its new token, its series moved, then the
# old row deleted.
_ROTATED = """
CREATE TEMPORARY TABLE rotated_sessions ON COMMIT DROP AS
SELECT token AS old_token, gen_random_uuid() AS new_token FROM sessions
WHERE closed_at IS NOT NULL OR key_id IS NOT NULL
"""
_COPY_UNDER_NEW_TOKENS = """
INSERT INTO sessions (token, user_id, created_at, host, seen, first)
SELECT rotated.new_token, sessions.user_id, sessions.created_at, sessions.host, sessions.seen, sessions.first
FROM sessions JOIN rotated_sessions AS rotated ON sessions.token = rotated.old_token
"""
_MOVE_SERIES = """
UPDATE series SET session_token = rotated.new_token
FROM rotated_sessions AS rotated WHERE series.session_token = rotated.old_token
"""
_DELETE_OLD_TOKENS = """
DELETE FROM sessions USING rotated_sessions AS rotated WHERE sessions.token = rotated.old_token
"""


def upgrade() -> None:
    """Create the two tables, then add the columns of sessions and the index of their keys."""
    # Spelled out rather than taken from tables.py, as in 0001..0004.
    op.create_table(
        "access_keys",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("last_used", sa.Double(), nullable=True),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_access_keys"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_access_keys_user_id_users"),
        sa.UniqueConstraint("digest", name="uq_access_keys_digest"),
        sa.CheckConstraint("scope IN ('ingest', 'read')", name="ck_access_keys_scope"),
    )
    op.create_index("ix_access_keys_user_id_created_at", "access_keys", ["user_id", "created_at"])
    op.create_table(
        "access_changes",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("mark", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_access_changes"),
        sa.CheckConstraint("id = 1", name="ck_access_changes_id"),
    )
    op.add_column("sessions", sa.Column("scope", sa.Text(), server_default="all", nullable=False))
    op.create_check_constraint("ck_sessions_scope", "sessions", "scope IN ('all', 'ingest', 'read')")
    op.add_column("sessions", sa.Column("key_id", sa.Text(), nullable=True))
    op.create_foreign_key("fk_sessions_key_id_access_keys", "sessions", "access_keys", ["key_id"], ["id"])
    op.add_column("sessions", sa.Column("closed_at", sa.Double(), nullable=True))
    op.create_index(
        "ix_sessions_key_id", "sessions", ["key_id"], postgresql_where=sa.text("key_id IS NOT NULL")
    )


def downgrade() -> None:
    """Give closed and key-opened sessions tokens nobody holds (see _ROTATED), then drop the columns and
    tables: keys are lost, every remaining session is a password session, every sample kept."""
    op.execute(_ROTATED)
    op.execute(_COPY_UNDER_NEW_TOKENS)
    op.execute(_MOVE_SERIES)
    op.execute(_DELETE_OLD_TOKENS)
    op.execute("DROP TABLE rotated_sessions")
    op.drop_index("ix_sessions_key_id", table_name="sessions")
    for name in ("closed_at", "key_id", "scope"):
        # The column's constraints (its check, its foreign key) go with it.
        op.drop_column("sessions", name)
    op.drop_table("access_changes")
    op.drop_table("access_keys")
