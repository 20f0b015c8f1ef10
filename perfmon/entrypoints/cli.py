"""The `perfmon` command: `serve`, `init-db` and `import-legacy`. The one place that configures logging."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from perfmon import bootstrap
from perfmon.domain.legacy_records import LegacySourceUnreadable
from perfmon.entrypoints.agent import command as agent_command
from perfmon.entrypoints.import_report import ProgressLine, summary
from perfmon.entrypoints.wsgi_server import create_server

logger = logging.getLogger("perfmon")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perfmon", description="A self-hosted performance-monitoring server."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    agent_command.add_parser(commands)

    serve = commands.add_parser("serve", help="serve the HTTP API (flags win over PERFMON_* variables)")
    serve.add_argument("--host", help="address to listen on (PERFMON_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port, 0 for any free one (PERFMON_PORT, default 8080)")
    serve.add_argument("--threads", type=int, help="worker threads (PERFMON_THREADS, default 8)")
    serve.add_argument("--storage", choices=bootstrap.STORAGE_KINDS, help="PERFMON_STORAGE, default file")
    serve.add_argument("--data-dir", help="file storage folder (PERFMON_DATA_DIR, default ./perfmon-data)")
    serve.add_argument("--database-url", help="PostgreSQL URL for --storage db (PERFMON_DATABASE_URL)")
    serve.add_argument("--fsync", choices=bootstrap.FSYNC_MODES, help="PERFMON_FSYNC, default never")
    serve.add_argument(
        "--max-body-bytes", type=int, help="request body limit (PERFMON_MAX_BODY_BYTES, 1 MiB)"
    )
    serve.add_argument("--log-level", help="PERFMON_LOG_LEVEL, default INFO")

    init_db = commands.add_parser("init-db", help="create the database if missing and migrate its schema")
    init_db.add_argument("--database-url", help="PostgreSQL URL (PERFMON_DATABASE_URL)")
    init_db.add_argument("--log-level", help="PERFMON_LOG_LEVEL, default INFO")

    legacy = commands.add_parser(
        "import-legacy", help="import the original PerformanceMonitor's users, sessions and samples"
    )
    source = legacy.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-dir", type=Path, help="the folder holding its users/ and users_data/")
    source.add_argument("--from-db", metavar="URL", help="its PostgreSQL database")
    legacy.add_argument("--storage", choices=bootstrap.STORAGE_KINDS, help="PERFMON_STORAGE, default file")
    legacy.add_argument("--data-dir", help="file storage folder (PERFMON_DATA_DIR, default ./perfmon-data)")
    legacy.add_argument("--database-url", help="PostgreSQL URL for --storage db (PERFMON_DATABASE_URL)")
    legacy.add_argument("--fsync", choices=bootstrap.FSYNC_MODES, help="PERFMON_FSYNC, default never")
    legacy.add_argument("--log-level", help="PERFMON_LOG_LEVEL, default INFO")
    return parser


def _flags(arguments: argparse.Namespace) -> dict[str, object]:
    return {name: value for name, value in vars(arguments).items() if name != "command"}


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # waitress stops its loop cleanly on KeyboardInterrupt, the same as Ctrl-C.
    raise KeyboardInterrupt


def serve(settings: bootstrap.Settings) -> int:
    """Run the server until SIGTERM or Ctrl-C."""
    container = bootstrap.build_container(settings)
    try:
        bootstrap.check_storage_ready_to_serve(container)
    except bootstrap.StorageNotReady as problem:
        logger.error("cannot serve: %s", problem)
        container.shutdown_resources()
        return 1
    server = create_server(
        container.http_app(),
        host=settings.host,
        port=settings.port,
        threads=settings.threads,
        max_body_bytes=settings.max_body_bytes,
    )
    location = settings.data_dir if settings.storage == "file" else bootstrap.describe_database(settings)
    logger.info(
        "perfmon listening on http://%s:%s storage=%s at %s threads=%d",
        settings.host,
        server.effective_port,
        settings.storage,
        location,
        settings.threads,
    )
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        server.run()
    finally:
        container.shutdown_resources()
        logger.info("perfmon stopped")
    return 0


def import_legacy(settings: bootstrap.Settings, from_dir: Path | None, from_db: str | None) -> int:
    """Run the import; the summary goes to stdout, a progress line to stderr when it is a terminal."""
    try:
        with ProgressLine(sys.stderr) as progress:
            report = bootstrap.import_legacy(
                settings, from_dir=from_dir, from_db=from_db, on_progress=progress
            )
    except (LegacySourceUnreadable, bootstrap.StorageNotReady) as problem:
        logger.error("cannot import: %s", problem)
        return 1
    except bootstrap.ConfigurationError as problem:
        logger.error("cannot import: %s", problem)
        return 2
    print(summary(report))
    if report.bad_lines:
        logger.warning("%d bad lines were not imported; --log-level DEBUG tells why", report.bad_lines)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `perfmon` console script and of `python -m perfmon`."""
    arguments = _parser().parse_args(argv)
    if arguments.command == "agent":  # a client of some server: no server settings, no container
        logging.basicConfig(level=arguments.log_level, format=LOG_FORMAT, stream=sys.stderr)
        return agent_command.run(arguments)
    try:
        settings = bootstrap.load_settings(_flags(arguments))
    except bootstrap.ConfigurationError as problem:
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
    return bootstrap.init_database(settings)
