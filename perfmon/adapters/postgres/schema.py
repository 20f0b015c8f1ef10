"""Creating the database and bringing its schema to the revision this perfmon needs, with Alembic."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg2 import errorcodes
from sqlalchemy import URL, Connection, Engine, column, create_engine, func, select, table, text
from sqlalchemy.exc import ProgrammingError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from perfmon.adapters.postgres.engine import CONNECT_ARGS, database_url
from perfmon.adapters.postgres.maintenance import PostgresHistoryMaintenance
from perfmon.adapters.postgres.transactions import outages_as_storage_unavailable, transaction

logger = logging.getLogger(__name__)

# The migrations ship inside the package, so Alembic finds them without an alembic.ini.
MIGRATIONS = "perfmon.adapters.postgres:migrations"
MAINTENANCE_DATABASE = "postgres"
# PostgreSQL truncates longer names silently, which would create a database of another name.
MAX_DATABASE_NAME_BYTES = 63
# Any constant shared by every perfmon process: it serialises concurrent upgrades.
MIGRATION_LOCK_KEY = 0x706572666D6F6E  # "perfmon" in ASCII

_pg_database = table("pg_database", column("datname"))


def create_database_if_missing(url: str) -> bool:
    """Create the URL's database on its server unless it exists; True when this call created it."""
    target = database_url(url)
    name = target.database
    if not name or len(name.encode()) > MAX_DATABASE_NAME_BYTES:
        raise ValueError(f"the database name must have 1..{MAX_DATABASE_NAME_BYTES} bytes")
    # CREATE DATABASE cannot run inside a transaction, and needs a connection to another database.
    admin_url = target.set(database=MAINTENANCE_DATABASE)
    with (
        _one_off_engine(admin_url, isolation_level="AUTOCOMMIT") as admin,
        outages_as_storage_unavailable(),
        admin.connect() as connection,
    ):
        return _create_database(connection, name)


def _create_database(connection: Connection, name: str) -> bool:
    exists = select(_pg_database.c.datname).where(_pg_database.c.datname == name)
    if connection.execute(exists).first() is not None:
        return False
    # An identifier cannot be a bound parameter: the dialect quotes it (doubling any '"').
    quoted = connection.dialect.identifier_preparer.quote_identifier(name)
    try:
        connection.exec_driver_sql(f"CREATE DATABASE {quoted}")
    except ProgrammingError as error:
        # Another process created it between our check and our CREATE: the goal is reached.
        if getattr(error.orig, "pgcode", None) != errorcodes.DUPLICATE_DATABASE:
            raise
        return False
    logger.info("Created database %s", quoted)
    return True


def upgrade_to_head(target: Engine | str, now: float | None = None) -> None:
    """Apply every pending migration in one transaction; a schema already at head is left alone. Then
    make the samples' partitions of the days around `now` (default: the clock's time, seconds since the
    epoch), as every maintenance pass does, unless another process is doing that now."""
    if isinstance(target, Engine):
        _upgrade(target, now)
        return
    with _one_off_engine(database_url(target)) as engine:
        _upgrade(engine, now)


def _upgrade(engine: Engine, now: float | None) -> None:
    moment = time.time() if now is None else now
    _migrate(engine, moment)
    PostgresHistoryMaintenance(engine).maintain(moment)


def _migrate(engine: Engine, now: float) -> None:
    config = _alembic_config()
    # The time of the upgrade, for the revisions that need one (0003 partitions the recent days).
    config.attributes["now"] = now
    with transaction(engine) as connection:
        # A migration may rightly take longer than the per-request limit (an index on many samples).
        connection.execute(text("SET LOCAL statement_timeout = 0"))
        # Two processes upgrading at once queue here; the second then finds the schema at head.
        connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def schema_status(engine: Engine) -> str | None:
    """None when the schema is at this perfmon's head revision, else what is wrong and what to do."""
    with transaction(engine) as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    scripts = ScriptDirectory.from_config(_alembic_config())
    heads = set(scripts.get_heads())
    if current == heads:
        return None
    if not current:
        return "The database has no perfmon schema: run `perfmon init-db` first."
    known = {script.revision for script in scripts.walk_revisions()}
    if not current <= known:
        return (
            f"The database schema is at revision {_listed(current)}, unknown to this perfmon: "
            "a newer perfmon migrated it; upgrade perfmon."
        )
    return (
        f"The database schema is at revision {_listed(current)} but this perfmon needs "
        f"{_listed(heads)}: run `perfmon init-db` to upgrade it."
    )


def database_is_missing(url: str) -> bool:
    """True when the URL's server answers and has no database of its name (run `perfmon init-db`);
    False when it has one, or when this cannot be told (the server is down, no access to `postgres`)."""
    target = database_url(url)
    try:
        with (
            _one_off_engine(target.set(database=MAINTENANCE_DATABASE)) as admin,
            admin.connect() as connection,
        ):
            exists = select(_pg_database.c.datname).where(_pg_database.c.datname == target.database)
            return connection.execute(exists).first() is None
    except SQLAlchemyError:
        return False


def is_schema_current(engine: Engine) -> bool:
    """True when the schema is at head, so that serving can begin."""
    return schema_status(engine) is None


def _listed(revisions: set[str]) -> str:
    return ", ".join(sorted(revisions))


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    return config


@contextmanager
def _one_off_engine(url: URL, **options: Any) -> Iterator[Engine]:
    """An engine without a pool for one administrative task, closed when the task ends."""
    engine = create_engine(url, poolclass=NullPool, connect_args=CONNECT_ARGS, **options)
    try:
        yield engine
    finally:
        engine.dispose()
