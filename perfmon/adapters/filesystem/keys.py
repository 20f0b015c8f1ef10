"""Access keys as files (PROTOCOL.md part 4). Not yet built: issue 13 in progress."""

from __future__ import annotations

from perfmon.adapters.filesystem.layout import DataDir
from perfmon.domain.model import AccessKey, Username
from perfmon.domain.ports import KeyRepository


class FileKeyRepository(KeyRepository):
    def __init__(self, data_dir: DataDir) -> None:
        self._dir = data_dir

    def add(self, key: AccessKey) -> None:
        raise NotImplementedError

    def by_digest(self, digest: str) -> AccessKey | None:
        raise NotImplementedError

    def for_user(self, user: Username) -> list[AccessKey]:
        raise NotImplementedError

    def revoke(self, user: Username, key_id: str, at: float) -> bool:
        raise NotImplementedError

    def mark_used(self, key_id: str, at: float) -> None:
        raise NotImplementedError
