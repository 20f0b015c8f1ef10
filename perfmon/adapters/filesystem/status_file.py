"""A session's status (SessionStatus: seen, first, the latest sample of each metric) in
`sessions/<token>/status.csv`, rewritten in place by each append that tells a receive time (History
gives one for sessions on a host) in the same journalled write as its samples (appends.py, edits.py),
so that a crash rolls both back together.

The file, floats in repr() so that they read back bit for bit (-0.0, 5e-324, 1.7976931348623157e308):

    seen,first
    <seen, empty when no write told it>,<first>
    metric,value,time
    <metric>,<value>,<time>      one line per metric ever written, sorted by name

A session without the file has no status: one without samples, one without a host (nothing reads
its status, so its appends keep none), or one of an earlier release that kept none (its status starts
at its next write, counting the samples from that write on; those sessions have no host, and GET /hosts
only sums up hosts' sessions).
"""

from __future__ import annotations

import os
from pathlib import Path

from perfmon.adapters.filesystem import journal
from perfmon.adapters.filesystem.edits import Edit
from perfmon.domain.model import Point, SessionStatus

# In the session folder; a metric name has no dot, so it cannot be the folder of a series.
STATUS = "status.csv"

_HEADER = "seen,first\n"
_METRICS_HEADER = "metric,value,time\n"


def text(status: SessionStatus) -> bytes:
    """The file's content for the status."""
    seen = "" if status.seen is None else repr(status.seen)
    lines = [_HEADER, f"{seen},{status.first!r}\n", _METRICS_HEADER]
    lines.extend(
        f"{metric},{point.value!r},{point.taken_at!r}\n" for metric, point in sorted(status.latest.items())
    )
    return "".join(lines).encode()


def parse(content: bytes) -> SessionStatus | None:
    """The status the content holds; None for an empty or damaged file (a file edited by hand), which
    the next append rewrites from its own samples."""
    lines = content.decode("ascii", "replace").split("\n")
    if len(lines) < 4 or lines[0] + "\n" != _HEADER or lines[2] + "\n" != _METRICS_HEADER or lines[-1]:
        return None
    try:
        seen, first = lines[1].split(",")
        latest: dict[str, Point] = {}
        for line in lines[3:-1]:
            metric, value, moment = line.split(",")
            latest[metric] = Point(float(value), float(moment))
        if not latest:
            return None
        return SessionStatus(None if seen == "" else float(seen), float(first), latest)
    except ValueError:
        return None


def committed(folder: Path) -> SessionStatus | None:
    """Under the session's shared (or exclusive) lock: the status as the last finished write left it;
    a write that never finished is seen as the journal says the file was before it (snapshots.py)."""
    try:
        content = (folder / STATUS).read_bytes()
    except FileNotFoundError:
        return None
    undo = journal.unfinished(folder).get(STATUS)
    return parse(content if undo is None else undo.committed(content))


class Opened:
    """Under the session's exclusive lock, with no write unfinished: the status file opened for the
    write (`fd`, None when the session has none yet) and what it holds. Close it once written."""

    def __init__(self, folder: Path) -> None:
        try:
            self.fd: int | None = os.open(folder / STATUS, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            self.fd = None
            self.content = b""
        else:
            try:
                self.content = _read_all(self.fd)
            except BaseException:
                self.close()
                raise
        self.status = parse(self.content) if self.fd is not None else None

    @classmethod
    def kept(cls, fd: int | None, content: bytes, status: SessionStatus | None) -> Opened:
        """The status file as kept open between writes (open_sessions.py), without reading it again."""
        opened = cls.__new__(cls)
        opened.fd, opened.content, opened.status = fd, content, status
        return opened

    def detach(self) -> int | None:
        """Hand the open file over to the caller, who closes it."""
        fd, self.fd = self.fd, None
        return fd

    def edit(self, moved: SessionStatus) -> Edit:
        """The edit that replaces the file's content with the moved status (or creates the file)."""
        if self.fd is None:
            return Edit(STATUS, -1, text(moved))
        return Edit(STATUS, 0, text(moved), replaced=self.content)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> Opened:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    parts: list[bytes] = []
    offset = 0
    while True:
        # Read to the end, whatever fstat said: the file is small, and a short read is no end.
        chunk = os.pread(fd, max(size - offset, 4096), offset)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        offset += len(chunk)
