"""The agent: a sampler thread and a sender thread around one spool, stopped cleanly on request."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from perfmon.agent.ports import (
    CredentialsRefused,
    Forbidden,
    KeyRefused,
    MetricsReader,
    PerfmonServer,
    SampleSpool,
)
from perfmon.agent.sampler import Sampler
from perfmon.agent.sender import RetryPolicy, Sender
from perfmon.agent.status import StatusReport

# Exit statuses of run(), and so of `perfmon agent` (which adds 2 for bad usage); README, "Deploying agents".
EXIT_STOPPED = 0  # stopped on request (SIGTERM, Ctrl-C)
EXIT_FAILED = 1  # a fatal error, a refused password among them
# The server refused the key: revoked or unknown at log in, or a key whose sessions may not post (a read
# key). Restarting with the same key cannot help, so it has a status of its own for a service manager to
# stop on (systemd's RestartPreventExitStatus=): sysexits.h's EX_NOPERM.
EXIT_KEY_REFUSED = 77
KEY_VARIABLE = "PERFMON_AGENT_KEY"  # where `perfmon agent` reads its key; named in the refusal's message
WHAT_TO_DO = (
    "make a new ingest key on the dashboard's keys page (or POST /keys) and restart the agent with it in "
    f"{KEY_VARIABLE}; the unsent samples are kept in the spool and go out with the new key"
)


@dataclass(frozen=True)
class AgentOptions:
    """How the agent samples and sends."""

    interval: float = 1.0
    register: bool = False
    retry: RetryPolicy = RetryPolicy()
    # On stop, how long the last attempt to send what is spooled may take; the rest stays spooled.
    final_drain_seconds: float = 2.0
    # After stop, how long a post already on its way plus the last drain may take before run() returns.
    stop_grace_seconds: float = 15.0


class Agent:
    """Samples into the spool and sends from it until stop(); run() returns the exit status."""

    def __init__(
        self,
        server: PerfmonServer,
        spool: SampleSpool,
        read_metrics: MetricsReader,
        report: StatusReport,
        options: AgentOptions = AgentOptions(),  # noqa: B008 - frozen
        *,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spool, self._report, self._options = spool, report, options
        self._with_key = server.user is None
        self._sampler = Sampler(
            read_metrics, spool, report, options.interval, wall_clock=wall_clock, monotonic=monotonic
        )
        self._sender = Sender(server, spool, report, register=options.register, retry=options.retry)
        self._stop = threading.Event()
        # Set when the sampler has ended: the sender's last drain waits for it, so that the reading taken
        # as stop came is spooled first and goes out with the rest.
        self._sampling_over = threading.Event()
        self._status = EXIT_STOPPED

    def stop(self) -> None:
        """Ask the agent to stop: sampling ends at once, sending after one last drain. Signal-safe: it
        only sets an event that the thread running run() never holds."""
        self._stop.set()

    def run(self) -> int:
        """Run until stop() or a fatal error; EXIT_STOPPED (0) after a clean stop, EXIT_KEY_REFUSED (77) when
        the server refused the key, EXIT_FAILED (1) after any other fatal error. The spool is kept as it
        is: nothing unsent is deleted."""
        threads = [
            threading.Thread(target=self._guarded, args=(self._sample_until_stopped,), name="sampler"),
            threading.Thread(
                target=self._guarded,
                args=(self._sender.run, self._stop, self._options.final_drain_seconds, self._sampling_over),
                name="sender",
            ),
        ]
        for thread in threads:
            thread.daemon = True  # a sender stuck past its timeouts must not keep the process alive
            thread.start()
        self._join(threads)
        self._report.finish(self._spool.counts())
        return self._status

    def _sample_until_stopped(self) -> None:
        try:
            self._sampler.run(self._stop)
        finally:
            self._sampling_over.set()

    def _join(self, threads: list[threading.Thread]) -> None:
        # Joining, not waiting on the stop event: a signal handler calling stop() on this thread must
        # never find the event's lock held by the very thread it interrupted.
        deadline: float | None = None
        while any(thread.is_alive() for thread in threads):
            if deadline is None and self._stop.is_set():
                deadline = time.monotonic() + self._options.stop_grace_seconds
            if deadline is not None and time.monotonic() > deadline:
                self._report.event(
                    logging.ERROR, "the sender did not finish in time; unsent samples stay spooled"
                )
                self._fail(EXIT_FAILED)
                return
            next(thread for thread in threads if thread.is_alive()).join(timeout=0.1)

    def _guarded(self, work: Callable[..., None], *arguments: object) -> None:
        """Run one side; whatever ends it early stops the other side too."""
        try:
            work(*arguments)
        except KeyRefused as refusal:
            self._stop_for_the_key(
                f"{refusal}: the server does not accept this key (revoked, or not one of its keys)"
            )
        except Forbidden as refusal:
            # Only a post can end here (the sender copes with a read it may not make): a read key.
            self._stop_for_the_key(f"{refusal}: this key's sessions may not post samples (a read key?)")
        except CredentialsRefused as refusal:
            # The server's reason is the same for an unknown user and a wrong password (part 1), so say
            # what to check: a first run without --register is the usual cause.
            check = "; check the user and password, or add --register"
            hint = "" if self._options.register or self._with_key else check
            self._report.event(logging.ERROR, f"{refusal}: stopping (spooled samples are kept){hint}")
            self._fail(EXIT_FAILED)
        except Exception as error:
            self._report.event(
                logging.ERROR,
                f"the agent's {threading.current_thread().name} failed ({error!r}): stopping",
                exc_info=True,
            )
            self._fail(EXIT_FAILED)
        finally:
            self._stop.set()

    def _stop_for_the_key(self, what_happened: str) -> None:
        """Stop with EXIT_KEY_REFUSED, saying what happened, how much stays spooled and what to do."""
        pending = self._spool.counts().pending
        self._report.event(
            logging.ERROR, f"{what_happened}: stopping with {pending} sample(s) unsent; {WHAT_TO_DO}"
        )
        self._fail(EXIT_KEY_REFUSED)

    def _fail(self, status: int) -> None:
        """The first fatal error's status is run()'s: what went wrong first is what to fix."""
        if self._status == EXIT_STOPPED:
            self._status = status
