"""The original's file storage: `users/<name>.txt` and `users_data/<hash>.csv` under one folder.

A user file holds `name,password` (clear text) on its first line, then one session hash per line.
A samples file holds the header `cpu,time`, then one `cpu,time` line per sample.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from perfmon.domain.legacy_records import (
    LegacySample,
    LegacySession,
    LegacySource,
    LegacySourceUnreadable,
    LegacyUser,
)

logger = logging.getLogger(__name__)

_USER_SUFFIX = ".txt"


@contextlib.contextmanager
def _unreadable_while(action: str) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        # The reason only: a samples file's name is a session hash, which is a credential.
        reason = error.strerror or type(error).__name__
        raise LegacySourceUnreadable(f"cannot read the legacy files while {action}: {reason}") from None


class LegacyFileSource(LegacySource):
    """Reads the folder that held the original's `users` and `users_data` folders."""

    def __init__(self, root: Path) -> None:
        self._users_dir = root / "users"
        self._samples_dir = root / "users_data"
        self._bad_lines = 0

    @property
    def bad_lines(self) -> int:
        return self._bad_lines

    def check(self) -> None:
        """Raise LegacySourceUnreadable unless the folder looks like the original's file storage."""
        if not self._users_dir.is_dir():
            raise LegacySourceUnreadable(
                f"{self._users_dir} is not a folder: not the original's file storage"
            )

    def users(self) -> Iterator[LegacyUser]:
        with _unreadable_while("listing the users"):
            paths = sorted(p for p in self._users_dir.iterdir() if p.name.endswith(_USER_SUFFIX))
        for path in paths:
            user = self._read_user(path)
            if user is None:
                logger.debug("skipped the unreadable first line of users/%s", path.name)
                self._bad_lines += 1
            else:
                yield user

    def _read_user(self, path: Path) -> LegacyUser | None:
        with _unreadable_while("reading a user"):
            content = path.read_bytes()
        try:
            # split("\n"), not splitlines(): a password may hold any other line-breaking character.
            lines = [line.rstrip("\r") for line in content.decode("utf-8").split("\n")]
        except UnicodeDecodeError:
            return None
        credentials = split_credentials(lines[0], path.name.removesuffix(_USER_SUFFIX))
        if credentials is None:
            return None
        # A hash listed twice is one session; dict keeps the order of first appearance.
        tokens = dict.fromkeys(stripped for line in lines[1:] if (stripped := line.strip()))
        sessions = [LegacySession(token, self._samples(token)) for token in tokens]
        return LegacyUser(name=credentials[0], password=credentials[1], sessions=sessions)

    def _samples(self, token: str) -> Iterator[LegacySample]:
        """The session's samples, read only when iterated (never for a session that is skipped)."""
        # The hash came from a file: one that could name a path outside users_data opens nothing.
        if token in (".", "..") or Path(token).name != token or "\0" in token:
            return
        with _unreadable_while("reading a session's samples"):
            try:
                file = (self._samples_dir / f"{token}.csv").open(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                logger.debug("a session of the legacy files has no samples file; imported without samples")
                return
            with file:
                for number, line in enumerate(file, start=1):
                    sample = self._parse_sample(line, number)
                    if sample is not None:
                        yield sample

    def _parse_sample(self, line: str, number: int) -> LegacySample | None:
        fields = [field.strip() for field in line.split(",")]
        if fields == [""] or (number == 1 and [field.lower() for field in fields] == ["cpu", "time"]):
            return None
        try:
            cpu, time = fields
            return LegacySample(cpu=float(cpu), time=float(time))
        except ValueError:
            logger.debug("skipped line %d of a samples file: not two numbers", number)
            self._bad_lines += 1
            return None


def split_credentials(line: str, stem: str) -> tuple[str, str] | None:
    """The name and password of a user file's first line, or None when it has no comma.

    The original wrote `f"{name},{password}"` and named the file after the user, so when the line
    starts with the file's name that is the name, even if it holds commas; otherwise the line is split
    on its first comma. Blanks around the comma are ignored, as the original's reader did.
    """
    rest = line[len(stem) :].lstrip()
    if stem and line.startswith(stem) and rest.startswith(","):
        return stem, rest[1:].strip()
    name, comma, password = line.partition(",")
    return (name.strip(), password.strip()) if comma else None
