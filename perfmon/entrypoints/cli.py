"""The `perfmon` command: `serve`, `init-db`, `import-legacy`, `prune` and `agent`. The one place that
configures logging, and where each command's failures become log lines and exit statuses."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from waitress.server import MultiSocketServer

from perfmon import __version__, bootstrap
from perfmon.agent import command as agent_command
from perfmon.config import (
    FSYNC_MODES,
    MAX_WORKERS,
    STORAGE_KINDS,
    ConfigurationError,
    Settings,
    load_settings,
)
from perfmon.domain.errors import StorageUnavailable
from perfmon.domain.legacy_records import LegacySourceUnreadable
from perfmon.entrypoints.access_log import WsgiApp, with_access_log
from perfmon.entrypoints.assembly import build_http_app
from perfmon.entrypoints.background import MaintenanceLoop, describe_prune
from perfmon.entrypoints.draining import StopSignals, serve_until_stopped
from perfmon.entrypoints.import_report import ProgressLine, summary
from perfmon.entrypoints.log_redaction import first_line, safe_traceback
from perfmon.entrypoints.open_files import open_file_limit, raise_open_file_limit, usable_connection_limit
from perfmon.entrypoints.startup_problems import (
    data_dir_problem,
    listen_problem,
    storage_problem,
)
from perfmon.entrypoints.workers import Supervisor
from perfmon.entrypoints.wsgi_server import FleetServer, create_server, listening_port, listening_sockets

logger = logging.getLogger("perfmon")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# With --workers, each line says which process wrote it: the parent or a worker.
WORKERS_LOG_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perfmon", description="A self-hosted performance-monitoring server."
    )
    parser.add_argument("--version", action="version", version=f"perfmon {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    agent_command.add_parser(commands)

    serve = commands.add_parser("serve", help="serve the HTTP API (flags win over PERFMON_* variables)")
    serve.add_argument("--host", help="address to listen on (PERFMON_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port, 0 for any free one (PERFMON_PORT, default 8080)")
    serve.add_argument("--threads", type=int, help="worker threads (PERFMON_THREADS, default 8)")
    serve.add_argument(
        "--workers",
        type=int,
        help="server processes sharing the port, each with its threads; one of them runs the "
        f"background passes (PERFMON_WORKERS, 1 to {MAX_WORKERS}, default 1)",
    )
    _add_storage_flags(serve)
    serve.add_argument(
        "--max-body-bytes", type=int, help="request body limit (PERFMON_MAX_BODY_BYTES, 1 MiB)"
    )
    serve.add_argument(
        "--trusted-proxies",
        help="reverse proxies whose X-Forwarded-For names the client, comma-separated addresses or "
        "networks (PERFMON_TRUSTED_PROXIES, default none)",
    )
    serve.add_argument(
        "--connection-limit", type=int, help="open connections at most (PERFMON_CONNECTION_LIMIT, 10000)"
    )
    serve.add_argument(
        "--idle-timeout",
        type=int,
        help="seconds before closing an idle connection (PERFMON_IDLE_TIMEOUT, 30)",
    )
    serve.add_argument(
        "--request-timeout",
        type=int,
        help="seconds a request may take to arrive whole (PERFMON_REQUEST_TIMEOUT, 30)",
    )
    _add_retention_flags(serve)
    serve.add_argument(
        "--maintenance-interval",
        type=int,
        help="seconds between background passes: rollups, compaction, pruning "
        "(PERFMON_MAINTENANCE_INTERVAL, default 10)",
    )
    serve.add_argument(
        "--access-log",
        action="store_true",
        default=None,
        help="log one line per request: method, path, status, ms (PERFMON_ACCESS_LOG=1; default off)",
    )

    init_db = commands.add_parser("init-db", help="create the database if missing and migrate its schema")
    init_db.add_argument("--database-url", help="PostgreSQL URL (PERFMON_DATABASE_URL)")
    init_db.add_argument("--log-level", help="PERFMON_LOG_LEVEL, default INFO")

    legacy = commands.add_parser(
        "import-legacy", help="import the original PerformanceMonitor's users, sessions and samples"
    )
    source = legacy.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-dir", type=Path, help="the folder holding its users/ and users_data/")
    source.add_argument("--from-db", metavar="URL", help="its PostgreSQL database")
    _add_storage_flags(legacy)

    prune = commands.add_parser(
        "prune",
        help="drop the raw samples and rollups older than the retention (a dry run unless --apply)",
    )
    _add_storage_flags(prune)
    _add_retention_flags(prune)
    prune.add_argument("--apply", action="store_true", help="drop them; without it, only say what would go")
    return parser


def _add_retention_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--retention",
        help="keep raw samples this long: 90d, 12h, 2w or forever (PERFMON_RETENTION, default forever)",
    )
    command.add_argument(
        "--rollup-retention",
        help="keep rollups this long, at least --retention (PERFMON_ROLLUP_RETENTION, default forever)",
    )


def _add_storage_flags(command: argparse.ArgumentParser) -> None:
    """The flags of the commands that open the storage (serve, import-legacy), and --log-level."""
    command.add_argument("--storage", choices=STORAGE_KINDS, help="PERFMON_STORAGE, default file")
    command.add_argument("--data-dir", help="file storage folder (PERFMON_DATA_DIR, default ./perfmon-data)")
    command.add_argument("--database-url", help="PostgreSQL URL for --storage db (PERFMON_DATABASE_URL)")
    command.add_argument("--fsync", choices=FSYNC_MODES, help="PERFMON_FSYNC, default never")
    command.add_argument("--log-level", help="PERFMON_LOG_LEVEL, default INFO")


def _flags(arguments: argparse.Namespace) -> dict[str, object]:
    return {name: value for name, value in vars(arguments).items() if name not in ("command", "apply")}


def serve(settings: Settings) -> int:
    """Run the server until SIGTERM or Ctrl-C, which drain it (draining.py); with --workers above 1,
    as a parent of worker processes (workers.py). A failure to start is one ERROR line and exit 1."""
    problem = data_dir_problem(settings.data_dir) if settings.storage == "file" else None
    if problem:
        logger.error(problem)
        return 1
    # Before the storage is built: the file storage sizes the files it keeps open by the limit
    # (open_sessions.kept_open_files), and the workers inherit it.
    raise_open_file_limit()
    if settings.workers > 1:
        return _serve_with_workers(settings)
    container = bootstrap.build_container(settings)
    try:
        server = _start_serving(settings, container)
    except _CannotServe as cannot:
        logger.error("%s", cannot)
        container.shutdown_resources()
        return 1
    stop = StopSignals(server)  # before the line that says it listens: a SIGTERM from then on drains
    _log_listening(settings, listening_port(server), server.adj.connection_limit)
    _run(settings, container, server, stop, maintenance=True)
    logger.info("perfmon stopped")
    return 0


def _serve_with_workers(settings: Settings) -> int:
    """The parent of --workers: the start-up checks of one process, the listening sockets, then the
    workers (each builds its own container after the fork: the parent keeps none)."""
    container = bootstrap.build_container(settings)
    try:
        with _one_line_failures():
            _check_storage(settings, container)
    except _CannotServe as cannot:
        logger.error("%s", cannot)
        return 1
    finally:
        container.shutdown_resources()
    file_limit = open_file_limit()  # raised by serve()
    try:
        sockets = listening_sockets(settings.host, settings.port)
    except (OSError, ValueError) as error:
        logger.error("%s", listen_problem(error, settings.host, settings.port))
        return 1
    connections = usable_connection_limit(settings.connection_limit, settings.threads, file_limit)
    supervisor = Supervisor(settings.workers, sockets, lambda slot: _serve_as_worker(settings, sockets, slot))
    port = sockets[0].getsockname()[1]
    status = supervisor.run(started=lambda: _log_listening(settings, port, connections))
    logger.info("perfmon stopped")
    return status


def _serve_as_worker(settings: Settings, sockets: Sequence[socket.socket], slot: int) -> int:
    """A worker's life, in its own process: serve on the inherited sockets until SIGTERM drains it.
    Slot 0's worker runs the background passes: once per deployment, whatever the number of workers."""
    container = bootstrap.build_container(settings)
    try:
        server = _start_serving(settings, container, sockets)
    except _CannotServe as cannot:
        logger.error("worker %d: %s", slot, cannot)
        container.shutdown_resources()
        return 1
    stop = StopSignals(server)
    runs = f"; it runs the background passes every {settings.maintenance_interval} s" if slot == 0 else ""
    logger.info("worker %d (pid %d) serving%s", slot, os.getpid(), runs)
    _run(settings, container, server, stop, maintenance=slot == 0)
    logger.info("worker %d (pid %d) stopped", slot, os.getpid())
    return 0


def _run(
    settings: Settings,
    container: bootstrap.Container,
    server: FleetServer | MultiSocketServer,
    stop: StopSignals,
    *,
    maintenance: bool,
) -> None:
    """Serve until a stop signal has been received and the requests in flight drained, then stop the
    background passes and the storage."""
    loop = MaintenanceLoop(container.retention(), settings.maintenance_interval) if maintenance else None
    if loop is not None:
        loop.start()
    try:
        cut = serve_until_stopped(server, stop)
        if cut:
            logger.warning("stopped with %d request(s) still in flight: their connections were closed", cut)
    finally:
        if loop is not None:
            loop.stop()
        container.shutdown_resources()


def _log_listening(settings: Settings, port: int, connections: int) -> None:
    location = settings.data_dir if settings.storage == "file" else settings.describe_database()
    logger.info(
        "perfmon listening on http://%s:%s storage=%s at %s threads=%d connections<=%d workers=%d",
        settings.host,
        port,
        settings.storage,
        location,
        settings.threads,
        connections,
        settings.workers,
    )
    if connections < settings.connection_limit:
        logger.warning(
            "connection limit lowered to %d: this process may open %d files (raise its `ulimit -n`)",
            connections,
            open_file_limit(),
        )


class _CannotServe(Exception):
    """A start-up failure; its message is the one line to log."""


def _check_storage(settings: Settings, container: bootstrap.Container) -> None:
    """Raise _CannotServe, with what to do, unless the storage can be served from."""
    try:
        bootstrap.check_storage_ready(container)
    except bootstrap.StorageNotReady as problem:
        missing = settings.describe_database() if bootstrap.database_is_missing(settings) else None
        raise _CannotServe(
            storage_problem(
                str(problem), storage=settings.storage, data_dir=settings.data_dir, missing_database=missing
            )
        ) from None


@contextlib.contextmanager
def _one_line_failures() -> Iterator[None]:
    """A start-up failure nobody foresaw is _CannotServe too: still one line, the traceback on demand."""
    try:
        yield
    except _CannotServe:
        raise
    except Exception as error:
        # Redacted as every traceback we log: an exception's text is data (a driver's DETAIL line).
        logger.debug("start-up failed\n%s", safe_traceback(error))
        raise _CannotServe(f"cannot serve: {first_line(error)} (--log-level DEBUG shows where)") from None


def _start_serving(
    settings: Settings, container: bootstrap.Container, sockets: Sequence[socket.socket] = ()
) -> FleetServer | MultiSocketServer:
    """The storage checked and the server bound (or on the inherited sockets); _CannotServe if not."""
    with _one_line_failures():
        _check_storage(settings, container)
        app: WsgiApp = build_http_app(settings, container)
        if settings.access_log:
            logging.getLogger("perfmon.access").setLevel(logging.INFO)
            app = with_access_log(app)
        try:
            server = create_server(
                app,
                host=settings.host,
                port=settings.port,
                threads=settings.threads,
                max_body_bytes=settings.max_body_bytes,
                connection_limit=settings.connection_limit,
                idle_timeout=settings.idle_timeout,
                request_timeout=settings.request_timeout,
                sockets=sockets,
            )
        except (OSError, ValueError) as error:
            raise _CannotServe(listen_problem(error, settings.host, settings.port)) from None
    return server


def import_legacy(settings: Settings, from_dir: Path | None, from_db: str | None) -> int:
    """`perfmon import-legacy`: the summary goes to stdout, a progress line to stderr when it is a
    terminal. Exit 1 when the source or the storage cannot be used, 2 for bad arguments. What was
    imported before a failure stays, and a second run carries on from there."""
    try:
        with ProgressLine(sys.stderr) as progress, bootstrap.legacy_source(from_dir, from_db) as source:
            source.check()
            container = bootstrap.build_container(settings)
            try:
                bootstrap.check_storage_ready(container)
                location = settings.data_dir if settings.storage == "file" else settings.describe_database()
                logger.info("importing legacy data into storage=%s at %s", settings.storage, location)
                report = container.legacy_import().run(source, progress)
            finally:
                container.shutdown_resources()
    except (LegacySourceUnreadable, bootstrap.StorageNotReady, StorageUnavailable) as problem:
        logger.error("cannot import: %s", problem)
        return 1
    except ConfigurationError as problem:
        logger.error("cannot import: %s", problem)
        return 2
    print(summary(report))
    if report.bad_lines:
        logger.warning("%d bad lines were not imported; --log-level DEBUG tells why", report.bad_lines)
    return 0


def prune(settings: Settings, apply: bool) -> int:
    """`perfmon prune`: say what the retention no longer keeps and, with --apply, drop it. Rollups are
    brought up to date first. Exit 1 when the storage cannot be used."""
    container = bootstrap.build_container(settings)
    try:
        bootstrap.check_storage_ready(container)
        retention = container.retention()
        if retention.policy.keeps_everything:
            print("retention keeps everything (PERFMON_RETENTION is forever): nothing to prune")
            return 0
        report = retention.prune(apply=apply)
    except (bootstrap.StorageNotReady, StorageUnavailable) as problem:
        logger.error("cannot prune: %s", problem)
        return 1
    finally:
        container.shutdown_resources()
    print(describe_prune(report) + ("" if apply else "; run with --apply to drop it"))
    return 0


def init_database(settings: Settings) -> int:
    """`perfmon init-db`: create the database if it is missing and migrate it to this version's schema.
    Exit 2 without a usable URL, 1 when the database server cannot be reached or refuses."""
    if not settings.database_url:
        logger.error("init-db needs a database URL (PERFMON_DATABASE_URL or --database-url)")
        return 2
    try:
        created = bootstrap.initialise_database(settings.database_url)
    except ValueError as error:  # a URL without a database name, or one too long for PostgreSQL
        logger.error("init-db needs a database name in the URL: %s", error)
        return 2
    except StorageUnavailable as error:
        logger.error("cannot initialise the database: %s", error)
        return 1
    existing = "created" if created else "existing"
    logger.info("%s database %s is at the newest schema", existing, settings.describe_database())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `perfmon` console script and of `python -m perfmon`."""
    arguments = _parser().parse_args(argv)
    if arguments.command == "agent":  # a client of some server: no server settings, no container
        logging.basicConfig(level=arguments.log_level, format=LOG_FORMAT, stream=sys.stderr)
        return agent_command.run(arguments)
    try:
        settings = load_settings(_flags(arguments))
    except ConfigurationError as problem:
        print(f"perfmon: {problem}", file=sys.stderr)
        return 2
    several = arguments.command == "serve" and settings.workers > 1
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=WORKERS_LOG_FORMAT if several else LOG_FORMAT,
        stream=sys.stderr,
    )
    # waitress warns of a task queue deeper than its thread count on every such request: under load
    # that is a log line for most requests, which costs time and says nothing the operator can act on.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    if arguments.command == "serve":
        return serve(settings)
    if arguments.command == "import-legacy":
        return import_legacy(settings, arguments.from_dir, arguments.from_db)
    if arguments.command == "prune":
        return prune(settings, arguments.apply)
    return init_database(settings)
