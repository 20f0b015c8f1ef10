"""Creating the database and migrating it with the Alembic scripts shipped in the package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, column, insert, select, table, text

from perfmon.adapters.postgres.engine import create_engine_for
from perfmon.adapters.postgres.schema import (
    MIGRATIONS,
    create_database_if_missing,
    is_schema_current,
    schema_status,
    upgrade_to_head,
)
from perfmon.adapters.postgres.tables import metadata, users
from tests.postgres_server import drop_database, unique_database_url

pytestmark = pytest.mark.postgres

ODD_NAME = 'perfmon odd "quote" %s/?#@:ü;-- DROP'


@pytest.fixture
def new_database_url(postgres_server_url: str) -> Iterator[str]:
    """The URL of a database that does not exist yet; dropped after the test whatever it did."""
    url = unique_database_url(postgres_server_url, prefix="perfmon_schema_")
    yield url.render_as_string(hide_password=False)
    drop_database(postgres_server_url, url.database or "")


@pytest.fixture
def new_engine(new_database_url: str) -> Iterator[Engine]:
    """An engine on a brand-new, empty database."""
    create_database_if_missing(new_database_url)
    engine = create_engine_for(new_database_url, pool_size=2)
    yield engine
    engine.dispose()


def _database_names(server_url: str) -> set[str]:
    engine = create_engine_for(server_url, pool_size=1)
    try:
        with engine.connect() as connection:
            return set(connection.execute(text("SELECT datname FROM pg_database")).scalars())
    finally:
        engine.dispose()


def test_creating_and_upgrading_a_new_database_twice_is_harmless(new_database_url: str) -> None:
    assert create_database_if_missing(new_database_url) is True
    assert create_database_if_missing(new_database_url) is False
    upgrade_to_head(new_database_url)
    engine = create_engine_for(new_database_url, pool_size=1)
    try:
        with engine.begin() as connection:
            connection.execute(insert(users).values(name="kept", password_hash="h"))
        upgrade_to_head(engine)
        with engine.connect() as connection:
            assert connection.execute(select(users.c.name)).scalars().all() == ["kept"]
        assert is_schema_current(engine)
    finally:
        engine.dispose()


def test_schema_is_not_current_on_an_empty_database_and_is_after_upgrade(new_engine: Engine) -> None:
    assert not is_schema_current(new_engine)
    assert "perfmon init-db" in (schema_status(new_engine) or "")
    upgrade_to_head(new_engine)
    assert is_schema_current(new_engine)
    assert schema_status(new_engine) is None


def test_schema_migrated_by_a_newer_perfmon_is_reported_as_such(new_engine: Engine) -> None:
    upgrade_to_head(new_engine)
    with new_engine.begin() as connection:
        version = table("alembic_version", column("version_num"))
        connection.execute(version.update().values(version_num="9999"))
    assert not is_schema_current(new_engine)
    assert "newer perfmon" in (schema_status(new_engine) or "")


def test_a_database_name_with_odd_characters_is_quoted_as_an_identifier(postgres_server_url: str) -> None:
    url = unique_database_url(postgres_server_url).set(database=ODD_NAME)
    try:
        assert create_database_if_missing(url.render_as_string(hide_password=False)) is True
        assert ODD_NAME in _database_names(postgres_server_url)
        upgrade_to_head(url.render_as_string(hide_password=False))
    finally:
        drop_database(postgres_server_url, ODD_NAME)
    assert ODD_NAME not in _database_names(postgres_server_url)


def test_a_database_name_postgres_would_truncate_is_refused(postgres_server_url: str) -> None:
    url = unique_database_url(postgres_server_url).set(database="x" * 64)
    with pytest.raises(ValueError, match="1..63 bytes"):
        create_database_if_missing(url.render_as_string(hide_password=False))


def test_the_migrations_build_exactly_the_tables_module(postgres_engine: Engine) -> None:
    with postgres_engine.connect() as connection:
        # The samples' partitions come and go with time (partitions.py), so the tables module has none.
        children = set(
            connection.execute(text("SELECT relname FROM pg_class WHERE relispartition")).scalars()
        )
        assert "samples_default" in children

        def not_a_partition(item: object, name: str | None, kind: str, *_: object) -> bool:
            table = item if kind == "table" else getattr(item, "table", None)
            return getattr(table, "name", name) not in children

        context = MigrationContext.configure(connection, opts={"include_object": not_a_partition})
        assert compare_metadata(context, metadata) == []


def _what_compare_metadata_leaves_out(engine: Engine) -> dict[str, set[tuple[str, ...]]]:
    """The check constraints, the indexes as PostgreSQL spells them (a partial index's predicate too) and
    the column defaults of perfmon's tables: not Alembic's own, not the samples' partitions."""
    queries = {
        "checks": """
            SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE contype = 'c' AND connamespace = 'public'::regnamespace""",
        "indexes": """
            SELECT tablename, indexname, indexdef FROM pg_indexes JOIN pg_class ON relname = tablename
            WHERE schemaname = 'public' AND NOT relispartition AND tablename <> 'alembic_version'""",
        "defaults": """
            SELECT table_name, column_name, column_default FROM information_schema.columns
            JOIN pg_class ON relname = table_name
            WHERE table_schema = 'public' AND NOT relispartition AND column_default IS NOT NULL""",
    }
    with engine.connect() as connection:
        return {
            kind: {tuple(row) for row in connection.execute(text(query))} for kind, query in queries.items()
        }


def test_the_migrations_build_the_checks_defaults_and_partial_indexes_of_the_tables_module(
    postgres_engine: Engine, new_engine: Engine
) -> None:
    # compare_metadata above compares none of these: a database made from tables.py serves as reference.
    metadata.create_all(new_engine)
    migrated = _what_compare_metadata_leaves_out(postgres_engine)
    assert migrated == _what_compare_metadata_leaves_out(new_engine)
    assert (
        "sessions",
        "ck_sessions_scope",
        "CHECK ((scope = ANY (ARRAY['all'::text, 'ingest'::text, 'read'::text])))",
    ) in migrated["checks"]
    assert any(
        name == "ix_sessions_key_id" and "WHERE (key_id IS NOT NULL)" in sql
        for _, name, sql in migrated["indexes"]
    )


def test_a_database_of_the_release_before_access_keys_is_told_to_run_init_db(new_engine: Engine) -> None:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["now"] = 1_764_504_000.0
    with new_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
    assert schema_status(new_engine) == (
        "The database schema is at revision 0004 but this perfmon needs 0005: "
        "run `perfmon init-db` to upgrade it."
    )
    upgrade_to_head(new_engine)
    assert is_schema_current(new_engine)
