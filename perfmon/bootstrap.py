"""The composition root: the container that wires the domain services to the storage adapters, built
from Settings (perfmon.config). The only module that names concrete adapters; it builds no app and reads
no environment: the entrypoints build their apps from the services it gives them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from dependency_injector import containers, providers
from limits.storage import MemoryStorage

from perfmon.adapters.filesystem import FileStorage
from perfmon.adapters.filesystem.open_sessions import kept_open_files
from perfmon.adapters.key_source import RandomKeySource
from perfmon.adapters.legacy.database import LegacyDatabaseSource, legacy_engine
from perfmon.adapters.legacy.files import LegacyFileSource
from perfmon.adapters.login_throttle import LimitsLoginThrottle
from perfmon.adapters.password_hasher import Argon2PasswordHasher
from perfmon.adapters.postgres import repositories as postgres
from perfmon.adapters.postgres import schema
from perfmon.adapters.postgres.engine import engine_resource
from perfmon.adapters.postgres.login_failures import PostgresLimitsStorage
from perfmon.config import ConfigurationError, Settings
from perfmon.domain.access import Access, KeyUsage, SessionGate
from perfmon.domain.accounts import Accounts
from perfmon.domain.errors import StorageUnavailable
from perfmon.domain.history import History
from perfmon.domain.legacy_import import LegacyImport
from perfmon.domain.retention import Retention, RetentionPolicy


class StorageNotReady(RuntimeError):
    """The configured storage cannot be served from yet; the message says what to do."""


def new_session_token() -> str:
    """A session hash: a UUID4, 122 bits from the OS's CSPRNG."""
    return str(uuid.uuid4())


class Container(containers.DeclarativeContainer):
    """Builds the services from settings; tests override providers with fakes."""

    config = providers.Configuration()
    # Seconds since the epoch: every service reads the time through this one provider.
    clock = providers.Object(time.time)

    file_storage = providers.Singleton(
        FileStorage,
        data_dir=config.data_dir,
        fsync=config.fsync_always,
        # What the descriptor limit leaves once every allowed connection is counted.
        open_files=providers.Callable(kept_open_files, config.connection_limit, config.threads),
    )
    engine = providers.Resource(engine_resource, url=config.database_url, pool_size=config.threads)

    users = providers.Selector(
        config.storage,
        file=file_storage.provided.users,
        db=providers.Singleton(postgres.PostgresUserRepository, engine),
    )
    sessions = providers.Selector(
        config.storage,
        file=file_storage.provided.sessions,
        db=providers.Singleton(postgres.PostgresSessionRepository, engine),
    )
    keys = providers.Selector(
        config.storage,
        file=file_storage.provided.keys,
        db=providers.Singleton(postgres.PostgresKeyRepository, engine, sessions),
    )
    postgres_samples = providers.Singleton(postgres.PostgresSampleRepository, engine)
    samples = providers.Selector(config.storage, file=file_storage.provided.samples, db=postgres_samples)
    # The sample storage's background work: the same object as the samples in both storages.
    maintenance = providers.Selector(config.storage, file=file_storage.provided.samples, db=postgres_samples)
    check_storage = providers.Selector(
        config.storage,
        file=file_storage.provided.check,
        db=providers.Factory(postgres.DatabaseHealth, engine).provided.check,
    )

    # Failed logins counted per process with files; shared by every process on the database with db.
    login_throttle = providers.Selector(
        config.storage,
        file=providers.Singleton(
            LimitsLoginThrottle, storage=providers.Singleton(MemoryStorage), clock=clock
        ),
        db=providers.Singleton(
            LimitsLoginThrottle,
            storage=providers.Singleton(PostgresLimitsStorage, engine),
            clock=clock,
        ),
    )
    password_hasher = providers.Singleton(Argon2PasswordHasher)
    key_usage = providers.Singleton(KeyUsage, keys=keys, clock=clock)
    gate = providers.Singleton(SessionGate, sessions=sessions, usage=key_usage)
    accounts = providers.Singleton(
        Accounts,
        users=users,
        sessions=sessions,
        hasher=password_hasher,
        new_token=providers.Object(new_session_token),
        clock=clock,
        throttle=login_throttle,
        keys=keys,
        key_usage=key_usage,
    )
    access = providers.Singleton(
        Access,
        gate=gate,
        sessions=sessions,
        keys=keys,
        key_source=providers.Singleton(RandomKeySource),
        clock=clock,
    )
    history = providers.Singleton(History, gate=gate, sessions=sessions, samples=samples, clock=clock)
    retention = providers.Singleton(
        Retention,
        policy=providers.Singleton(
            RetentionPolicy, raw=config.retention_seconds.raw, rollups=config.retention_seconds.rollups
        ),
        maintenance=maintenance,
        clock=clock,
    )
    legacy_import = providers.Factory(
        LegacyImport,
        users=users,
        sessions=sessions,
        samples=samples,
        hasher=password_hasher,
        clock=clock,
    )


def build_container(settings: Settings) -> Container:
    """A container configured from the settings; call init_resources()/shutdown_resources() around use."""
    container = Container()
    raw, rollups = settings.retention_seconds()
    container.config.from_dict(
        {
            **asdict(settings),
            "fsync_always": settings.fsync == "always",
            "retention_seconds": {"raw": raw, "rollups": rollups},
        }
    )
    return container


def check_storage_ready(container: Container) -> None:
    """Build the storage now rather than on the first request, and refuse a database whose schema is not
    this version's: serving or importing on a half-migrated schema would fail later, less clearly.

    Raises StorageNotReady with what to do."""
    try:
        if container.config.storage() == "db":
            problem = schema.schema_status(container.engine())
            if problem is not None:
                raise StorageNotReady(problem)
        container.check_storage()()
    except StorageUnavailable as error:
        raise StorageNotReady(f"storage unavailable: {error}") from error


def database_is_missing(settings: Settings) -> bool:
    """True when the database server answers that the settings' database does not exist."""
    return settings.storage == "db" and schema.database_is_missing(settings.database_url or "")


def initialise_database(database_url: str) -> bool:
    """Create the database if it is missing and migrate it to this version's schema; True if it was
    created. ValueError for a URL without a usable database name, StorageUnavailable when the server
    cannot be reached or refuses."""
    created = schema.create_database_if_missing(database_url)
    schema.upgrade_to_head(database_url)
    return created


@contextmanager
def legacy_source(
    from_dir: Path | None, from_db: str | None
) -> Iterator[LegacyFileSource | LegacyDatabaseSource]:
    """The original PerformanceMonitor's data: its folder, or its database (closed on leaving).

    ConfigurationError unless exactly one source is given, or for a database URL that cannot be used."""
    if (from_dir is None) == (from_db is None):
        raise ConfigurationError("import-legacy needs exactly one of --from-dir and --from-db")
    if from_dir is not None:
        yield LegacyFileSource(Path(from_dir).resolve())
        return
    try:
        engine = legacy_engine(from_db or "")
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    try:
        yield LegacyDatabaseSource(engine)
    finally:
        engine.dispose()
