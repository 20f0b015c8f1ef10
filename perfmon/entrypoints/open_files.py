"""The process's file-descriptor budget: every client connection is one open file."""

from __future__ import annotations

import contextlib
import resource

# Descriptors kept for what is not a client connection: the listening socket, waitress's trigger,
# log and storage files, and per worker thread a database connection or a file being appended.
RESERVED_FILES = 64
RESERVED_FILES_PER_THREAD = 4
# Where the hard limit is "unlimited", Linux still refuses more than fs.nr_open (1,048,576 by default).
UNLIMITED_CAP = 1 << 20


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one where the system allows it; the soft limit now.

    The soft limit is often 1,024, far below the connections of a fleet, while the hard limit, which an
    unprivileged process may raise its soft limit to, is usually much higher."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_CAP if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        # A sandbox or a lower fs.nr_open may refuse: then keep what we have.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return open_file_limit()


def open_file_limit() -> int:
    """The soft RLIMIT_NOFILE: how many descriptors this process may hold open."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return UNLIMITED_CAP if soft == resource.RLIM_INFINITY else soft


def usable_connection_limit(requested: int, threads: int, file_limit: int) -> int:
    """The connection limit that leaves room for perfmon's own files, at most the one requested.

    Past the descriptor limit, accept() fails and waitress keeps retrying it in a busy loop."""
    budget = file_limit - RESERVED_FILES - RESERVED_FILES_PER_THREAD * threads
    return max(1, min(requested, budget))
