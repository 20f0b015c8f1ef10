"""The sending side of the agent: drains the spool to the server in batches, oldest first.

A batch leaves the spool only once the server has it. When a post ends without an answer (timeout, reset,
5xx, a crash of the agent), the server may or may not have stored it; before sending again the sender asks
the server which of the oldest spooled samples it already holds and acknowledges those instead of
resending them; while the server cannot be asked, nothing is sent. Delivery is at-least-once, as the
README says: the check avoids duplicates in practice, but a post that timed out on the agent's side while
the server was still writing it can look missing to the check, be sent again, and be stored twice.

A session opened with an ingest key may post but not read (PROTOCOL.md part 4: 403 on any read): such a
sender resends without the check, still at-least-once, a lost answer's batch then stored twice. A 403 on a
post, and a key refused at log in (revoked, or unknown), end the run: no retry can cure them."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from perfmon.agent.model import Batch, redact
from perfmon.agent.ports import (
    AlreadyRegistered,
    Forbidden,
    PerfmonServer,
    Rejected,
    ServerUnavailable,
    SessionExpired,
    SpoolQueue,
)
from perfmon.agent.status import StatusReport

# PROTOCOL.md part 3: a POST /samples batch holds 1..10,000 samples. A sample of the whole catalogue is
# 300 to 400 bytes of JSON: 2,000 make under 800 KB, within the server's default body limit (1 MiB), where
# 10,000 would be answered 413 and halved twice at every start.
FIRST_BATCH = 2_000
IDLE_WAIT_SECONDS = 0.25


@dataclass(frozen=True)
class RetryPolicy:
    """Back-off between attempts while the server is unavailable: doubling from first to most."""

    first: float = 0.5
    most: float = 10.0


class Sender:
    """Owns the session and the conversation with the server; runs in a thread of its own."""

    def __init__(
        self,
        server: PerfmonServer,
        spool: SpoolQueue,
        report: StatusReport,
        *,
        register: bool = False,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, so sharing the default is harmless
    ) -> None:
        self._server, self._spool, self._report = server, spool, report
        self._register, self._retry = register, retry
        self._token: str | None = None
        self._batch_size = FIRST_BATCH
        self._next_batch_limit: int | None = None
        self._timeout: float | None = None  # per call; None is the client's own
        # Whether the oldest spooled samples may already be on the server: true at start (an earlier
        # run may have died between a 200 and its acknowledgement) and after every unanswered post.
        self._check_first = True
        # False once a read answered 403 (a session opened with an ingest key): then no check at all.
        self._may_read = True

    def run(
        self, stop: threading.Event, final_drain_seconds: float, sampling_over: threading.Event | None = None
    ) -> None:
        """Send until stop is set, backing off while the server is unavailable; then a last, short drain,
        once sampling_over is set (the sampler has spooled the reading it was taking when stop came), or
        the drain's time has passed. CredentialsRefused (KeyRefused among them) and Forbidden on a post end
        the run: the caller stops the agent."""
        delay = self._retry.first
        while not stop.is_set():
            try:
                if not self.send_one_batch():
                    self._spool.compact()
                    self._spool.wait_for_samples(IDLE_WAIT_SECONDS)
                delay = self._retry.first
            except ServerUnavailable as problem:
                self._report.problem(str(problem))
                stop.wait(min(problem.retry_after or delay, self._retry.most))
                delay = min(delay * 2, self._retry.most)
        deadline = time.monotonic() + final_drain_seconds
        if sampling_over is not None:
            sampling_over.wait(final_drain_seconds)
        self.drain(deadline)

    def drain(self, deadline: float) -> None:
        """Send what is spooled until the spool is empty, the server fails, or the deadline passes."""
        while self._spool.counts().pending and (remaining := deadline - time.monotonic()) > 0:
            self._timeout = max(remaining, 0.2)
            try:
                self.send_one_batch()
            except ServerUnavailable as problem:
                self._report.problem(str(problem))
                return
            finally:
                self._timeout = None

    def send_one_batch(self) -> bool:
        """One step of the work; False when there was nothing to send. ServerUnavailable on failure."""
        batch = self._spool.peek(min(self._batch_size, self._next_batch_limit or self._batch_size))
        if not batch.samples:
            return False
        token = self._session()
        if self._check_first and self._may_read:
            try:
                found = self._already_stored(token, batch)
            except SessionExpired:
                self._token = None
                return True
            except Forbidden:
                self._may_read = False
                self._report.event(
                    logging.INFO,
                    "this session may post but not read (an ingest key): a batch whose answer was lost is "
                    "sent again without asking the server what it holds (at-least-once)",
                )
                return True
            if found:
                self._spool.commit(batch, found)
                self._report.delivered(found)
                self._report.refresh(self._spool.counts())
            if found == len(batch.samples):
                return True  # the next batch may be on the server too
            self._check_first = False
            batch = self._spool.peek(len(batch.samples) - found)
        self._post(token, batch)
        return True

    def _post(self, token: str, batch: Batch) -> None:
        self._check_first = True  # until an answer says otherwise
        try:
            self._server.post_samples(token, batch.samples, self._timeout)
        except SessionExpired:
            self._check_first = False
            self._report.event(logging.INFO, "session expired: logging in again")
            self._token = None
            return
        except Rejected as rejection:
            self._check_first = False
            self._handle_rejection(batch, rejection)
            return
        self._check_first = False
        self._next_batch_limit = None
        self._spool.commit(batch)
        self._report.delivered(len(batch.samples))
        self._report.refresh(self._spool.counts())

    def _handle_rejection(self, batch: Batch, rejection: Rejected) -> None:
        """Never wedge on a batch the server refuses: shrink it, or set its bad sample aside."""
        size = len(batch.samples)
        if rejection.status == 413 and size > 1:
            self._batch_size = max(1, size // 2)
            self._report.event(logging.WARNING, f"batch too large for the server: now {self._batch_size}")
            return
        index = rejection.sample_index
        if index is not None and 0 < index < size:
            self._next_batch_limit = index  # the samples before the bad one go first, on their own
            return
        bad = 1 if index == 0 else size
        self._spool.quarantine(batch, bad)
        self._next_batch_limit = None
        self._report.event(logging.ERROR, f"{rejection}; {bad} sample(s) set aside in quarantine.csv")

    def _session(self) -> str:
        if self._token is None:
            self._token = self._open_session()
            who = "with a key" if self._server.user is None else f"as {self._server.user}"
            where = f"on host {self._server.host}, session {redact(self._token)}"
            self._report.event(logging.INFO, f"logged in {who} {where}")
        return self._token

    def _open_session(self) -> str:
        if not self._register:
            return self._server.log_in(self._timeout)
        try:
            token = self._server.register(self._timeout)
            self._report.event(logging.INFO, f"registered user {self._server.user}")
        except AlreadyRegistered:
            token = self._server.log_in(self._timeout)
        self._register = False
        return token

    def _already_stored(self, token: str, batch: Batch) -> int:
        """How many of the batch's leading samples the server already holds for this host, in any of its
        sessions (one GET /samples?host= read). A sample counts as held when every one of its metrics is
        stored at its exact time with its exact value, so only the very same reading taken at the very
        same instant on this host could be mistaken for one of ours."""
        start = min(sample.taken_at for sample in batch.samples)
        end = max(sample.taken_at for sample in batch.samples)
        names = sorted({name for sample in batch.samples for name in sample.metrics})
        stored = self._server.stored_values(token, names, start, end, self._timeout)
        found = 0
        for sample in batch.samples:
            if any((name, sample.taken_at, value) not in stored for name, value in sample.metrics.items()):
                break
            found += 1
        return found
