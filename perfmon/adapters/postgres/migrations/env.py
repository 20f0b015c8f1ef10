"""Alembic's entry point: migrates the connection that schema.upgrade_to_head hands over in its config."""

from __future__ import annotations

from alembic import context

from perfmon.adapters.postgres.tables import metadata


def run_migrations_online() -> None:
    """Run the pending revisions inside the caller's transaction, so that they apply all or none."""
    if context.is_offline_mode():
        raise RuntimeError("perfmon migrates live databases only; SQL script output is not supported")
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
