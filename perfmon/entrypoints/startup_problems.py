"""What `perfmon serve` says when it cannot start: one line, what is wrong and what to do."""

from __future__ import annotations

import errno
import os
from pathlib import Path


def listen_problem(error: OSError | ValueError, host: str, port: int) -> str:
    """The message for an address that could not be bound (OSError) or resolved (ValueError)."""
    where = f"{host}:{port}"
    if isinstance(error, ValueError) or isinstance(error, OSError) and error.errno in _UNRESOLVED:
        return (
            f"cannot listen on {where}: {host!r} is not an address of this machine; "
            "set --host (PERFMON_HOST) to 127.0.0.1, 0.0.0.0 or one of its addresses"
        )
    if error.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {where}: the port is in use by another program; stop it or choose "
            "another --port (PERFMON_PORT)"
        )
    if error.errno == errno.EACCES:
        return (
            f"cannot listen on {where}: permission denied (ports below 1024 need privileges); "
            "choose a --port (PERFMON_PORT) above 1023"
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {where}: {host} is not an address of this machine; set --host "
            "(PERFMON_HOST) to 127.0.0.1, 0.0.0.0 or one of its addresses"
        )
    return f"cannot listen on {where}: {one_line(error.strerror or str(error))}; check --host and --port"


# getaddrinfo's failures, as socket.gaierror (an OSError) carries them.
_UNRESOLVED = {-2, -3, -5, -8, -9}


def data_dir_problem(data_dir: Path) -> str | None:
    """Why file storage cannot use data_dir (None when it can be created and written), found before
    anything is created: the nearest existing folder on its path must be a writable folder."""
    existing = data_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        culprit = "is not a folder" if existing == data_dir else f"cannot be created: {existing} is a file"
        return f"cannot use data dir {data_dir}: it {culprit}; {_CHOOSE_DATA_DIR}"
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "is not writable" if existing == data_dir else f"cannot be created: {existing} is not writable"
        return f"cannot use data dir {data_dir}: it {what}; {_CHOOSE_DATA_DIR}"
    return None


_CHOOSE_DATA_DIR = "set --data-dir (PERFMON_DATA_DIR) to a folder perfmon can create and write"


def storage_problem(message: str, *, storage: str, data_dir: Path, missing_database: str | None) -> str:
    """The message for storage that is not ready to serve, with what to do about it. missing_database:
    the database (described without its password) when its server says it does not exist."""
    if storage == "db" and missing_database:
        return (
            f"cannot serve: database {missing_database} does not exist; run `perfmon init-db` with the "
            "same PERFMON_DATABASE_URL (or --database-url) to create it"
        )
    if storage == "file":
        return f"cannot serve: {one_line(message)} (data dir {data_dir}); {_CHOOSE_DATA_DIR}"
    return f"cannot serve: {one_line(message)}"


def one_line(text: str) -> str:
    """text with its line breaks and runs of blanks made single spaces (a driver's message may span
    lines)."""
    return " ".join(text.split())
