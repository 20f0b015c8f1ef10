"""The files behind the spool: segments of sample lines, the state file, the lock and the quarantine.

A sample is one ASCII line, `time,name=value,name=value...` (`1700000000.5,cpu=12.5,mem=41.0`): metric
names match `[a-z][a-z0-9_]{0,63}` (PROTOCOL.md part 3), so they hold neither `,` nor `=`. Segments
written by the release before hosts and metrics hold `cpu,time` lines (`12.5,1700000000.0`), which have no
`=`: they still read back, as samples of the one metric `cpu`. (That release cannot read the new lines:
going back to it sets them aside in the quarantine.)"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from perfmon.agent.model import Sample

try:  # POSIX; elsewhere two agents on one spool folder are not prevented
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

STATE_FILE = "state.json"
LOCK_FILE = "lock"
QUARANTINE_FILE = "quarantine.csv"
_SEGMENT = re.compile(r"segment-(\d{8})\.csv")
# Samples say when a machine was busy: for its user only, whatever the umask.
PRIVATE_FILE_MODE = 0o600
PRIVATE_FOLDER_MODE = 0o700


class SpoolLocked(RuntimeError):
    """Another agent is using the spool folder."""


@dataclass(frozen=True)
class SpoolState:
    """Which segment is current, and the byte offset of its first sample not yet acknowledged or dropped."""

    segment: int = 0
    head: int = 0


def private(path: str | bytes | os.PathLike[str], flags: int) -> int:
    """An opener for open(): a file it creates is read-write for its owner only (0600)."""
    return os.open(path, flags, PRIVATE_FILE_MODE)


def make_private_folder(folder: Path) -> None:
    """Create the folder 0700; tighten one that exists (an older agent's, or made by hand) and its files.

    chmod rather than mkdir's mode alone: mkdir neither changes an existing folder nor escapes the umask."""
    folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER_MODE)
    if folder.stat().st_mode & 0o777 != PRIVATE_FOLDER_MODE:
        folder.chmod(PRIVATE_FOLDER_MODE)
    for entry in folder.iterdir():
        mode = entry.lstat().st_mode
        if stat.S_ISREG(mode) and mode & 0o077:
            entry.chmod(PRIVATE_FILE_MODE)


def segment_path(folder: Path, segment: int) -> Path:
    return folder / f"segment-{segment:08d}.csv"


def segment_numbers(folder: Path) -> list[int]:
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _SEGMENT.fullmatch(p.name)))


def read_state(folder: Path) -> SpoolState:
    """The saved state; when missing or unreadable, the start of the newest segment (resend, never lose)."""
    try:
        document = json.loads((folder / STATE_FILE).read_text())
        return SpoolState(int(document["segment"]), int(document["head"]))
    except (OSError, ValueError, TypeError, KeyError):
        return SpoolState(max(segment_numbers(folder), default=0), 0)


def write_state(folder: Path, state: SpoolState, fsync: bool) -> None:
    """Replace the state file atomically: a crash leaves either the old state or the new one."""
    temporary = folder / f"{STATE_FILE}.tmp"
    with open(temporary, "w", opener=private) as file:
        json.dump({"segment": state.segment, "head": state.head}, file)
        if fsync:
            file.flush()
            os.fsync(file.fileno())
    os.replace(temporary, folder / STATE_FILE)


def lock_folder(folder: Path) -> IO[bytes]:
    """An exclusive lock on the folder, held while the returned file stays open."""
    handle = open(folder / LOCK_FILE, "ab", opener=private)  # noqa: SIM115 - held open for the spool's lifetime
    if fcntl is not None:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise SpoolLocked(f"another perfmon agent is using the spool folder {folder}") from None
    return handle


def repair_torn_tail(path: Path) -> int:
    """Cut a last line that a crash left half-written (it never counted as spooled); the file's size."""
    with open(path, "r+b") as file:
        size = file.seek(0, os.SEEK_END)
        start = size
        while start > 0:
            step = min(4096, start)
            file.seek(start - step)
            chunk = file.read(step)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                start = start - step + newline + 1
                break
            start -= step
        if start != size:
            file.truncate(start)
        return start


def count_lines(path: Path, offset: int) -> int:
    with open(path, "rb") as file:
        file.seek(offset)
        return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))


_METRIC_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def encode(sample: Sample) -> bytes:
    """The sample as one ASCII spool line ending in a newline: `time,name=value,...`, metrics in its order."""
    # repr() is the shortest text that reads back as the same float: values round-trip exactly.
    values = "".join(f",{name}={float(value)!r}" for name, value in sample.metrics.items())
    return f"{float(sample.taken_at)!r}{values}\n".encode()


def decode(line: bytes) -> Sample | None:
    """The sample on a line, in either format, or None when the line is not one (a damaged file)."""
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        fields = line.decode("ascii").strip().split(",")
        if b"=" not in line:
            cpu, taken_at = (float(value) for value in fields)  # the previous release's `cpu,time`
            metrics = {"cpu": cpu}
        else:
            taken_at = float(fields[0])
            pairs = [field.split("=") for field in fields[1:]]
            metrics = {name: float(value) for name, value in pairs}
            if len(metrics) != len(pairs) or not all(_METRIC_NAME.fullmatch(name) for name in metrics):
                return None
        if metrics and math.isfinite(taken_at) and all(math.isfinite(v) for v in metrics.values()):
            return Sample(metrics, taken_at)
    return None
