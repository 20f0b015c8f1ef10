"""The change mark of the file storage: what every logout and revocation moves, so that each process's
SessionCache drops the sessions it holds within CLOSED_EVERYWHERE_WITHIN seconds (PROTOCOL.md part 4).

The mark is read as three stamps, none of which holds a secret:
- `access.changes`: one line appended after each logout or revocation is durable; its inode and size.
  It moves for every closing however close together two come.
- the `keys/` and `closed/` folders' inode and modification time: the rename that commits a revocation
  and the link that commits a logout move them in the same system call. A process killed between such a
  commit and its line in access.changes still moves the mark, so no other process keeps serving a session
  it had cached. (A folder's time moves by the kernel's clock tick, which alone could let two changes
  within one tick look like one: the line is what makes every change count.)

Making a key (its index and record linked into `keys/`) moves the folder's time too, and so drops every
process's cached sessions once: keys are made rarely, and a drop only costs reading sessions again.
`keys/used/` is apart from `keys/` because last_used is written often, and must not drop caches.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable
from pathlib import Path

from perfmon.adapters.filesystem.files import append_line, storage_errors
from perfmon.adapters.filesystem.layout import DataDir
from perfmon.domain.errors import StorageUnavailable

logger = logging.getLogger(__name__)

# What a missing access.changes reads as: no closing has happened on this data dir yet.
_NO_CHANGES = (0, 0)


class ChangeMark:
    """Reads and moves the data dir's change mark (see the module docstring)."""

    def __init__(self, data_dir: DataDir) -> None:
        self._dir = data_dir

    def read(self) -> Hashable:
        """The mark as it is now: equal to an earlier read only if no closing was committed in between.
        Raises StorageUnavailable when the data dir cannot be read (a vanished volume)."""
        with storage_errors("looking for closed sessions"):
            try:
                changes = os.stat(self._dir.changes)
                lines = (changes.st_ino, changes.st_size)
            except FileNotFoundError:
                lines = _NO_CHANGES
            return (lines, _folder_stamp(self._dir.keys), _folder_stamp(self._dir.closed))

    def move(self, what: str) -> None:
        """Append a line after a closing is durable; `what` must hold no secret (no session token).

        A line that cannot be written (a full disk) is logged, not raised: the closing is committed, so
        the caller must not be told it failed, and the folder time its commit moved is seen by every
        process all the same (the module docstring)."""
        try:
            with storage_errors("noting a closed session"):
                append_line(self._dir, self._dir.changes, f"{what}\n".encode("ascii"))
        except StorageUnavailable as error:
            logger.warning("a closing is committed but not noted in access.changes: %s", error)


def _folder_stamp(folder: Path) -> tuple[int, int]:
    found = os.stat(folder)
    return (found.st_ino, found.st_mtime_ns)
