"""How far each raw file of a series has been rolled up: `rolled.csv` in the series folder.

One line per plain segment (`<day>.csv`, `<day>.late.csv`), `<file>,<offset>`: the file's lines before
the offset are in the stored rollups, those after it (the unrolled tail) not yet; a file without a
line has none rolled up. The write that makes a segment adds its line, at 0 (appends.py), so the file
names every plain segment of the series and maintenance need not list the folder (rolling.py). A
compacted segment is wholly rolled up (compaction waits for it). Maintenance rewrites the file in the
same journalled write as the rollup rows it adds, so a sample is never counted twice or lost, whatever
crashes.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from perfmon.adapters.filesystem.files import replace_file
from perfmon.adapters.filesystem.layout import DataDir
from perfmon.adapters.filesystem.series_files import ROLLED

HEADER = b"file,rolled\n"


def read(series: Path) -> dict[str, int]:
    """The offsets of the series' plain segments; none when the series has no rolled.csv yet."""
    try:
        return parse((series / ROLLED).read_bytes())
    except FileNotFoundError:
        return {}


def forget(data_dir: DataDir, series: Path, name: str) -> None:
    """Drop the line of a segment that is gone (compacted or folded), if rolled.csv has one."""
    with contextlib.suppress(FileNotFoundError):
        marks = parse((series / ROLLED).read_bytes())
        if marks.pop(name, None) is not None:
            replace_file(data_dir, series / ROLLED, text(marks))


def parse(content: bytes) -> dict[str, int]:
    """The offsets by file name; damaged lines are ignored (their files count as not rolled up)."""
    marks: dict[str, int] = {}
    for line in content.split(b"\n")[1:-1]:
        name, _, offset = line.decode("ascii", "replace").partition(",")
        if offset.isdigit():
            marks[name] = int(offset)
    return marks


def text(marks: dict[str, int]) -> bytes:
    """The file's content for the offsets."""
    return HEADER + b"".join(f"{name},{offset}\n".encode() for name, offset in sorted(marks.items()))
