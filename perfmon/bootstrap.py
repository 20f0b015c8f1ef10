"""The composition root: configuration from the environment and flags, and the container that wires
the domain services to the storage adapters. The only module that names concrete adapters."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from dependency_injector import containers, providers
from limits.storage import MemoryStorage
from sqlalchemy.exc import ArgumentError

from perfmon.adapters.filesystem import FileStorage
from perfmon.adapters.legacy.database import LegacyDatabaseSource, legacy_engine
from perfmon.adapters.legacy.files import LegacyFileSource
from perfmon.adapters.login_throttle import LimitsLoginThrottle
from perfmon.adapters.password_hasher import Argon2PasswordHasher
from perfmon.adapters.postgres import repositories as postgres
from perfmon.adapters.postgres import schema
from perfmon.adapters.postgres.engine import database_url, engine_resource
from perfmon.adapters.postgres.login_failures import PostgresLimitsStorage
from perfmon.domain.accounts import Accounts
from perfmon.domain.cpu_history import CpuHistory
from perfmon.domain.errors import StorageUnavailable
from perfmon.domain.legacy_import import ImportReport, LegacyImport
from perfmon.entrypoints.http.app import DEFAULT_MAX_BODY_BYTES, create_app
from perfmon.entrypoints.http.client_address import ClientAddress, parse_trusted_proxies

logger = logging.getLogger(__name__)

STORAGE_KINDS = ("file", "db")
FSYNC_MODES = ("always", "never")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigurationError(ValueError):
    """A setting that perfmon cannot start with; the message says which and why."""


class StorageNotReady(RuntimeError):
    """The configured storage cannot be served from yet; the message says what to do."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable, read in one place: `PERFMON_<FIELD>` in the environment, or a CLI flag."""

    host: str = "127.0.0.1"
    port: int = 8080
    threads: int = 8
    storage: str = "file"
    data_dir: Path = Path("perfmon-data")
    database_url: str | None = None
    fsync: str = "never"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    log_level: str = "INFO"
    # Reverse proxies whose X-Forwarded-For names the client (login limits): comma-separated addresses
    # or CIDR networks; none by default, as anyone can write that header.
    trusted_proxies: str = ""
    # Connections (perfmon.entrypoints.wsgi_server): open at once; seconds a connection may sit idle
    # or an answer go unread; seconds a request may take to arrive whole (slowloris).
    connection_limit: int = 10_000
    idle_timeout: int = 30
    request_timeout: int = 30
    # One INFO line per request on the "perfmon.access" logger (perfmon.entrypoints.access_log).
    access_log: bool = False

    def __post_init__(self) -> None:
        if self.storage not in STORAGE_KINDS:
            raise ConfigurationError(
                f"storage must be one of {', '.join(STORAGE_KINDS)}, not {self.storage!r}"
            )
        if self.fsync not in FSYNC_MODES:
            raise ConfigurationError(f"fsync must be one of {', '.join(FSYNC_MODES)}, not {self.fsync!r}")
        if self.storage == "db" and not self.database_url:
            raise ConfigurationError(
                "storage 'db' needs a database URL (PERFMON_DATABASE_URL or --database-url)"
            )
        if self.database_url:
            _check_database_url(self.database_url)
        if not 0 <= self.port <= 65535:
            raise ConfigurationError(f"port must be in 0..65535, not {self.port}")
        if self.threads < 1 or self.max_body_bytes < 1:
            raise ConfigurationError("threads and max body bytes must be positive")
        if min(self.connection_limit, self.idle_timeout, self.request_timeout) < 1:
            raise ConfigurationError("connection limit, idle timeout and request timeout must be positive")
        if not isinstance(self.access_log, bool):
            raise ConfigurationError(f"access log must be on or off, not {self.access_log!r}")
        try:
            parse_trusted_proxies(self.trusted_proxies)
        except ValueError as error:
            raise ConfigurationError(f"trusted proxies: {error}") from None
        if self.log_level.upper() not in LOG_LEVELS:
            raise ConfigurationError(
                f"log level must be one of {', '.join(LOG_LEVELS)}, not {self.log_level!r}"
            )


def _check_database_url(url: str) -> None:
    """Refuse a URL that perfmon cannot connect with now, rather than with a traceback at startup. The
    message never repeats the URL: it may hold a password."""
    try:
        driver = database_url(url).drivername
    except (ArgumentError, ValueError):
        driver = None
    if driver != "postgresql+psycopg2":
        raise ConfigurationError(
            "the database URL must have the form postgresql://user:password@host:port/database"
        )


def load_settings(
    flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from the environment, with flags (None meaning 'not given') winning over it."""
    environ = os.environ if environ is None else environ
    flags = flags or {}
    values: dict[str, Any] = {}
    for field in fields(Settings):
        raw = flags.get(field.name)
        if raw is None:
            raw = environ.get(f"PERFMON_{field.name.upper()}")
        if raw is None:
            continue
        try:
            values[field.name] = _convert(field.name, raw)
        except ValueError:
            raise ConfigurationError(f"{field.name} must be a whole number, not {raw!r}") from None
    # The data dir is resolved against the working directory, never the source tree.
    settings = Settings(**values)
    return Settings(**{**asdict(settings), "data_dir": settings.data_dir.resolve()})


def _convert(name: str, raw: Any) -> Any:
    if name in ("port", "threads", "max_body_bytes", "connection_limit", "idle_timeout", "request_timeout"):
        return int(raw)
    if name == "access_log":  # a value that is neither is refused by Settings' validation
        word = str(raw).lower()
        if word in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return word in ("1", "true", "yes", "on")
        return raw
    if name == "data_dir":
        return Path(raw)
    return str(raw)


def new_session_token() -> str:
    """A session hash: a UUID4, 122 bits from the OS's CSPRNG."""
    return str(uuid.uuid4())


class Container(containers.DeclarativeContainer):
    """Builds the services and the HTTP app from settings; tests override providers with fakes."""

    config = providers.Configuration()

    file_storage = providers.Singleton(FileStorage, data_dir=config.data_dir, fsync=config.fsync_always)
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
    samples = providers.Selector(
        config.storage,
        file=file_storage.provided.samples,
        db=providers.Singleton(postgres.PostgresSampleRepository, engine),
    )
    check_storage = providers.Selector(
        config.storage,
        file=file_storage.provided.check,
        db=providers.Factory(postgres.DatabaseHealth, engine).provided.check,
    )

    # Failed logins counted per process with files; shared by every process on the database with db.
    login_throttle = providers.Selector(
        config.storage,
        file=providers.Singleton(
            LimitsLoginThrottle, storage=providers.Singleton(MemoryStorage), clock=providers.Object(time.time)
        ),
        db=providers.Singleton(
            LimitsLoginThrottle,
            storage=providers.Singleton(PostgresLimitsStorage, engine),
            clock=providers.Object(time.time),
        ),
    )
    password_hasher = providers.Singleton(Argon2PasswordHasher)
    accounts = providers.Singleton(
        Accounts,
        users=users,
        sessions=sessions,
        hasher=password_hasher,
        new_token=providers.Object(new_session_token),
        clock=providers.Object(time.time),
        throttle=login_throttle,
    )
    cpu_history = providers.Singleton(CpuHistory, sessions=sessions, samples=samples)
    legacy_import = providers.Factory(
        LegacyImport,
        users=users,
        sessions=sessions,
        samples=samples,
        hasher=password_hasher,
        clock=providers.Object(time.time),
    )
    http_app = providers.Singleton(
        create_app,
        accounts,
        cpu_history,
        storage_name=config.storage,
        check_storage=check_storage,
        max_body_bytes=config.max_body_bytes,
        client_address=providers.Singleton(
            ClientAddress, providers.Callable(parse_trusted_proxies, config.trusted_proxies)
        ),
    )


def build_container(settings: Settings) -> Container:
    """A container configured from the settings; call init_resources()/shutdown_resources() around use."""
    container = Container()
    container.config.from_dict({**asdict(settings), "fsync_always": settings.fsync == "always"})
    return container


def check_storage_ready_to_serve(container: Container) -> None:
    """Build the storage now rather than on the first request, and refuse a database whose schema is not
    this version's: serving on a half-migrated schema would answer 500s instead of a clear message."""
    try:
        if container.config.storage() == "db":
            problem = schema.schema_status(container.engine())
            if problem is not None:
                raise StorageNotReady(problem)
        container.check_storage()()
        container.http_app()
    except StorageUnavailable as error:
        raise StorageNotReady(f"storage unavailable: {error}") from error


def describe_database(settings: Settings) -> str:
    """The database URL without its password, fit for a log line."""
    return database_url(settings.database_url or "").render_as_string(hide_password=True)


def init_database(settings: Settings) -> int:
    """`perfmon init-db`: create the database if it is missing and migrate it to this version's schema."""
    if not settings.database_url:
        logger.error("init-db needs a database URL (PERFMON_DATABASE_URL or --database-url)")
        return 2
    try:
        created = schema.create_database_if_missing(settings.database_url)
        schema.upgrade_to_head(settings.database_url)
    except ValueError as error:  # a URL without a database name, or one too long for PostgreSQL
        logger.error("init-db needs a database name in the URL: %s", error)
        return 2
    except StorageUnavailable as error:
        logger.error("cannot initialise the database: %s", error)
        return 1
    logger.info(
        "%s database %s is at the newest schema",
        "created" if created else "existing",
        describe_database(settings),
    )
    return 0


def import_legacy(
    settings: Settings,
    *,
    from_dir: Path | None = None,
    from_db: str | None = None,
    on_progress: Callable[[ImportReport], None] = lambda report: None,
) -> ImportReport:
    """`perfmon import-legacy`: the original's data, from its folder or its database, into the storage.

    ConfigurationError for a bad source argument, LegacySourceUnreadable when the source cannot be read,
    StorageNotReady when the storage cannot be written. What was imported before a failure stays, and a
    second run carries on from there."""
    with _legacy_source(from_dir, from_db) as source:
        source.check()
        container = build_container(settings)
        try:
            _check_storage_ready_to_import(container)
            location = settings.data_dir if settings.storage == "file" else describe_database(settings)
            logger.info("importing legacy data into storage=%s at %s", settings.storage, location)
            return container.legacy_import().run(source, on_progress)
        except StorageUnavailable as error:
            raise StorageNotReady(f"storage unavailable: {error}") from error
        finally:
            container.shutdown_resources()


@contextmanager
def _legacy_source(
    from_dir: Path | None, from_db: str | None
) -> Iterator[LegacyFileSource | LegacyDatabaseSource]:
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


def _check_storage_ready_to_import(container: Container) -> None:
    """As for serving: the storage answers, and a database is at this version's schema."""
    if container.config.storage() == "db":
        problem = schema.schema_status(container.engine())
        if problem is not None:
            raise StorageNotReady(problem)
    container.check_storage()()
