"""Holding the PostgreSQL group commit's writers, so that a test decides which appends make a group."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from perfmon.adapters.postgres.group_commit import GroupCommitWriter


@contextmanager
def writers_busy(writer: GroupCommitWriter) -> Iterator[None]:
    """Take every idle connection of the writer, as groups being written hold them: appends made meanwhile
    queue. At the end the connections are handed back, and the first one writes the whole queue as one
    group, in arrival order."""
    with writer._lock:
        taken, writer._idle = writer._idle, []
    try:
        yield
    finally:
        for connection in taken:
            writer._hand_over(connection)
