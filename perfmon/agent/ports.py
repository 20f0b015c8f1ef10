"""What the agent needs from the world outside it, as ports: a perfmon server, a spool, a machine reading.

The HTTP client (adapters/http_client.py) implements PerfmonServer and tests fake it
(tests/agent_fakes.py; tests/integration/test_agent_server_port.py holds both to one behaviour);
adapters/spool.py implements SampleSpool (SampleSink for the sampler,
SpoolQueue for the sender); adapters/machine.py is a MetricsReader."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from perfmon.agent.model import Batch, Sample, SpoolCounts

# The machine's metrics now (adapters/machine.MachineMeter): name -> value, PROTOCOL.md part 3's catalogue
# less what could not be measured this time; empty when nothing was: no sample.
MetricsReader = Callable[[], Mapping[str, float]]
# A stored value as the server reads it back: (metric, time, value).
StoredValue = tuple[str, float, float]


class ServerError(Exception):
    """Base of what the server, or the way to it, can answer instead of success."""


class ServerUnavailable(ServerError):
    """No answer (refused, reset, timed out), a 5xx, or an answer the agent cannot use: try again later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SessionExpired(ServerError):
    """401 on a data call: the server no longer knows the session; log in again."""


class CredentialsRefused(ServerError):
    """Log in or registration refused: wrong password, unknown user, or a name the server does not accept."""


class KeyRefused(CredentialsRefused):
    """Log in with a key refused (401): the key is unknown or has been revoked (PROTOCOL.md part 4). Trying
    again cannot help: a new key is needed."""


class Forbidden(ServerError):
    """403 on a data call: the session may not do this (PROTOCOL.md part 4: an ingest key's session may post
    but not read; a read key's may read but not post)."""


class AlreadyRegistered(ServerError):
    """Registration refused because the user exists."""


class Rejected(ServerError):
    """400 or 413 on a batch: the server will never take it as it is."""

    def __init__(
        self, status: int, reason: str, sample_index: int | None = None, detail: str | None = None
    ) -> None:
        super().__init__(f"server answered {status}: {reason}" + (f" ({detail})" if detail else ""))
        self.status = status
        self.reason = reason
        self.detail = detail  # which field broke which rule, when the server says (PROTOCOL.md, errors)
        self.sample_index = sample_index  # the first bad sample, when the server names it


class PerfmonServer(Protocol):
    """The calls the agent makes, for one user and one host (PROTOCOL.md part 3); the errors above are
    the other answers.

    register and log_in open a new session on the host, with the user's password, or with a key (part 4:
    then `user` is None, the server knows the key's user, log_in raises KeyRefused for an unknown or
    revoked key, and there is no registering); post_samples stores 1..10,000 samples all or nothing
    (POST /samples); stored_values reads back the host's history, every session of it merged
    (GET /samples?host=), as (metric, time, value) for the metrics named, times within [start, end].
    A session that may not make a call (a key's scope) gets Forbidden."""

    user: str | None
    host: str

    def register(self, timeout: float | None = None) -> str: ...
    def log_in(self, timeout: float | None = None) -> str: ...
    def post_samples(self, token: str, samples: Sequence[Sample], timeout: float | None = None) -> None: ...
    def stored_values(
        self, token: str, metrics: Sequence[str], start: float, end: float, timeout: float | None = None
    ) -> set[StoredValue]: ...


class SpoolWriteError(OSError):
    """A sample could not be written to the spool (disk full, permission denied); it is not spooled."""


class SampleSink(Protocol):
    """Where the sampler puts each reading; append raises SpoolWriteError when it cannot keep it."""

    def append(self, sample: Sample) -> None: ...
    def counts(self) -> SpoolCounts: ...


class SpoolQueue(Protocol):
    """What the sender takes batches from, oldest first, and acknowledges them to once the server has them."""

    def peek(self, max_count: int) -> Batch: ...
    def commit(self, batch: Batch, count: int | None = None) -> None: ...
    def quarantine(self, batch: Batch, count: int) -> None: ...
    def wait_for_samples(self, timeout: float) -> bool: ...
    def compact(self) -> None: ...
    def counts(self) -> SpoolCounts: ...


class SampleSpool(SampleSink, SpoolQueue, Protocol):
    """Both sides of the spool, as the agent hands it to its sampler and its sender."""
