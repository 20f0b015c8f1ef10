"""Access keys and their ids from the OS's CSPRNG (the `secrets` module)."""

from __future__ import annotations

import secrets

from perfmon.domain.model import KEY_PREFIX
from perfmon.domain.ports import KeySource

KEY_BYTES = 32
ID_BYTES = 8


class RandomKeySource(KeySource):
    """pmk_ + 32 random bytes in URL-safe base64 without padding (43 characters), as PROTOCOL.md part 4
    says; ids are 8 random bytes in hex."""

    def new_key(self) -> str:
        return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)

    def new_id(self) -> str:
        return secrets.token_hex(ID_BYTES)
