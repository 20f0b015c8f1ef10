"""The `perfmon` command: `serve`, `init-db`, `import-legacy`, `prune` and `agent`. The one place that
configures logging, and where each command's failures become log lines and exit statuses."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from waitress.server import MultiSocketServer

from perfmon import __version__, bootstrap
from perfmon.agent import command as agent_command
from perfmon.config import FSYNC_MODES, STORAGE_KINDS, ConfigurationError, Settings, load_settings
from perfmon.domain.errors import StorageUnavailable
from perfmon.domain.legacy_records import LegacySourceUnreadable
from perfmon.entrypoints.access_log import WsgiApp, with_access_log
from perfmon.entrypoints.assembly import build_http_app
from perfmon.entrypoints.background import MaintenanceLoop, describe_prune
from perfmon.entrypoints.import_report import ProgressLine, summary
from perfmon.entrypoints.log_redaction import first_line, safe_traceback
from perfmon.entrypoints.open_files import raise_open_file_limit
from perfmon.entrypoints.startup_problems import (
    data_dir_problem,
    listen_problem,
    storage_problem,
)
from perfmon.entrypoints.wsgi_server import FleetServer, create_server, listening_port

logger = logging.getLogger("perfmon")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # waitress stops its loop cleanly on KeyboardInterrupt, the same as Ctrl-C.
    raise KeyboardInterrupt


def serve(settings: Settings) -> int:
    """Run the server until SIGTERM or Ctrl-C. A failure to start is one ERROR line and exit status 1."""
    problem = data_dir_problem(settings.data_dir) if settings.storage == "file" else None
    if problem:
        logger.error(problem)
        return 1
    container = bootstrap.build_container(settings)
    try:
        server = _start_serving(settings, container)
    except _CannotServe as cannot:
        logger.error("%s", cannot)
        container.shutdown_resources()
        return 1
    except Exception as error:  # a failure nobody foresaw: still one line, the traceback on demand
        # Redacted as every traceback we log: an exception's text is data (a driver's DETAIL line).
        logger.debug("start-up failed\n%s", safe_traceback(error))
        logger.error("cannot serve: %s (--log-level DEBUG shows where)", first_line(error))
        container.shutdown_resources()
        return 1
    location = settings.data_dir if settings.storage == "file" else settings.describe_database()
    logger.info(
        "perfmon listening on http://%s:%s storage=%s at %s threads=%d connections<=%d",
        settings.host,
        listening_port(server),
        settings.storage,
        location,
        settings.threads,
        server.adj.connection_limit,
    )
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    maintenance = MaintenanceLoop(container.retention(), settings.maintenance_interval)
    maintenance.start()
    try:
        server.run()
    finally:
        maintenance.stop()
        container.shutdown_resources()
        logger.info("perfmon stopped")
    return 0


class _CannotServe(Exception):
    """A start-up failure; its message is the one line to log."""


def _start_serving(settings: Settings, container: bootstrap.Container) -> FleetServer | MultiSocketServer:
    try:
        bootstrap.check_storage_ready(container)
    except bootstrap.StorageNotReady as problem:
        missing = settings.describe_database() if bootstrap.database_is_missing(settings) else None
        raise _CannotServe(
            storage_problem(
                str(problem), storage=settings.storage, data_dir=settings.data_dir, missing_database=missing
            )
        ) from None
    app: WsgiApp = build_http_app(settings, container)
    if settings.access_log:
        logging.getLogger("perfmon.access").setLevel(logging.INFO)
        app = with_access_log(app)
    file_limit = raise_open_file_limit()
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
        )
    except (OSError, ValueError) as error:
        raise _CannotServe(listen_problem(error, settings.host, settings.port)) from None
    if server.adj.connection_limit < settings.connection_limit:
        logger.warning(
            "connection limit lowered to %d: this process may open %d files (raise its `ulimit -n`)",
            server.adj.connection_limit,
            file_limit,
        )
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
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=LOG_FORMAT,
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
