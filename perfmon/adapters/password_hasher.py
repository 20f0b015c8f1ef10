"""Argon2id password hashing through argon2-cffi."""

from __future__ import annotations

import argon2

from perfmon.domain.ports import PasswordHasher

# OWASP's minimum Argon2id profile: 19 MiB of memory, 2 passes, 1 lane.
OWASP_MEMORY_KIB = 19 * 1024
OWASP_TIME_COST = 2
OWASP_PARALLELISM = 1


class Argon2PasswordHasher(PasswordHasher):
    """Argon2id with a random salt per hash; verification runs in constant time."""

    def __init__(
        self,
        memory_kib: int = OWASP_MEMORY_KIB,
        time_cost: int = OWASP_TIME_COST,
        parallelism: int = OWASP_PARALLELISM,
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False
