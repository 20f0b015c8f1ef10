"""Builds each storage adapter behind the ports, so one contract suite can run against all of them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from perfmon.adapters.memory import (
    InMemorySampleRepository,
    InMemorySessionRepository,
    InMemoryUserRepository,
)
from perfmon.domain.ports import SampleRepository, SessionRepository, UserRepository


@dataclass
class Repositories:
    """The three repositories of one storage."""

    users: UserRepository
    sessions: SessionRepository
    samples: SampleRepository


def memory_repositories() -> Repositories:
    return Repositories(InMemoryUserRepository(), InMemorySessionRepository(), InMemorySampleRepository())
