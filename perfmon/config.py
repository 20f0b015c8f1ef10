"""Configuration, read in one place: `PERFMON_<SETTING>` environment variables, overridden by CLI flags.

Imports nothing of perfmon: the container (bootstrap) and the entrypoints read it, nothing reads them.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

STORAGE_KINDS = ("file", "db")
FSYNC_MODES = ("always", "never")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# PROTOCOL.md limits table: "body larger than the limit (default 1 MiB, configurable)".
DEFAULT_MAX_BODY_BYTES = 1024 * 1024

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_WHOLE_NUMBERS = (
    "port",
    "threads",
    "max_body_bytes",
    "connection_limit",
    "idle_timeout",
    "request_timeout",
    "maintenance_interval",
    "workers",
)
# A retention: a number and a unit, "90d", "12h", "2w"; "forever" (or nothing) keeps everything.
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([smhdw])")
_SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
KEEP_FOREVER = "forever"
MAX_MAINTENANCE_INTERVAL = 86400
# Server processes of `perfmon serve --workers`: a few per core is the most that helps, and each holds
# its own threads, database connections and open files.
MAX_WORKERS = 64
_TRUE_WORDS = ("1", "true", "yes", "on")
_FALSE_WORDS = ("0", "false", "no", "off")


class ConfigurationError(ValueError):
    """A setting that perfmon cannot start with; the message says which and why."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable about the server: `PERFMON_<FIELD>` in the environment, or a CLI flag.

    Raises ConfigurationError on construction for a value perfmon cannot run with.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    threads: int = 8
    # Server processes sharing the listening socket (perfmon.entrypoints.workers); 1 is one process.
    workers: int = 1
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
    # How long raw samples and rollups are kept ("90d", "12h", "2w"; "forever" by default: a monitoring
    # server deletes nothing its operator did not ask it to), and the seconds between the server's
    # background passes (rollups, compaction, partitions, pruning).
    retention: str = KEEP_FOREVER
    rollup_retention: str = KEEP_FOREVER
    maintenance_interval: int = 10

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
        if not 1 <= self.workers <= MAX_WORKERS:
            raise ConfigurationError(f"workers must be 1..{MAX_WORKERS} processes, not {self.workers}")
        if self.threads < 1 or self.max_body_bytes < 1:
            raise ConfigurationError("threads and max body bytes must be positive")
        if min(self.connection_limit, self.idle_timeout, self.request_timeout) < 1:
            raise ConfigurationError("connection limit, idle timeout and request timeout must be positive")
        if not 1 <= self.maintenance_interval <= MAX_MAINTENANCE_INTERVAL:
            # Far beyond a day, a pass would never come (and the timer overflows past about 9.2e9 s).
            raise ConfigurationError(
                f"maintenance interval must be 1..{MAX_MAINTENANCE_INTERVAL} seconds, "
                f"not {self.maintenance_interval}"
            )
        raw, rollups = self.retention_seconds()
        if rollups is not None and (raw is None or rollups < raw):
            raise ConfigurationError(
                "rollup retention must be at least the retention of raw samples "
                "(a step read of a pruned range answers from the rollups)"
            )
        if not isinstance(self.access_log, bool):
            raise ConfigurationError(f"access log must be on or off, not {self.access_log!r}")
        self.trusted_proxy_networks()
        if self.log_level.upper() not in LOG_LEVELS:
            raise ConfigurationError(
                f"log level must be one of {', '.join(LOG_LEVELS)}, not {self.log_level!r}"
            )

    def trusted_proxy_networks(self) -> tuple[Network, ...]:
        """The trusted proxies as networks (a single address is a /32 or /128 network)."""
        try:
            return parse_trusted_proxies(self.trusted_proxies)
        except ValueError as error:
            raise ConfigurationError(f"trusted proxies: {error}") from None

    def retention_seconds(self) -> tuple[float | None, float | None]:
        """How many seconds raw samples and rollups are kept; None for ever."""
        return _duration(self.retention, "retention"), _duration(self.rollup_retention, "rollup retention")

    def describe_database(self) -> str:
        """The database URL without its password, fit for a log line."""
        return make_url(self.database_url or "").render_as_string(hide_password=True)


def parse_trusted_proxies(text: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDR networks ("10.0.0.1, 192.168.0.0/16"); ValueError names a bad one."""
    networks = []
    for part in text.split(","):
        entry = part.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {entry!r}") from None
    return tuple(networks)


def _duration(text: str, setting: str) -> float | None:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise ConfigurationError(f"{setting}: {error}") from None


def parse_duration(text: str) -> float | None:
    """Seconds of a retention like "90d", "12h", "30m", "2w", "3600s"; None for "forever" or nothing.
    ValueError for anything else, or for no time at all."""
    word = text.strip().lower()
    if word in ("", KEEP_FOREVER):
        return None
    match = _DURATION.fullmatch(word)
    if match is None:
        raise ValueError(f"not a duration like 90d, 12h, 30m, 2w or forever: {text!r}")
    seconds = float(match.group(1)) * _SECONDS_PER_UNIT[match.group(2)]
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"a retention keeps something: {text!r}")
    return seconds


def _check_database_url(url: str) -> None:
    """Refuse a URL that perfmon cannot connect with, rather than with a traceback at start-up. The message
    never repeats the URL: it may hold a password. A bare postgresql:// means psycopg2, the driver we ship."""
    try:
        driver = make_url(url).drivername
    except (ArgumentError, ValueError):
        driver = None
    if driver not in ("postgresql", "postgresql+psycopg2"):
        raise ConfigurationError(
            "the database URL must have the form postgresql://user:password@host:port/database"
        )


def load_settings(
    flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from the environment, with flags (None meaning 'not given') winning over it.

    Raises ConfigurationError naming the setting for a value of the wrong form."""
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
    if name in _WHOLE_NUMBERS:
        return int(raw)
    if name == "access_log":  # a value that is neither is refused by Settings' validation
        word = str(raw).lower()
        return word in _TRUE_WORDS if word in _TRUE_WORDS + _FALSE_WORDS else raw
    if name == "data_dir":
        return Path(raw)
    return str(raw)
