"""The agent's bounded on-disk spool: every sample waits here, oldest first, until the server has it.

Samples are appended as lines (spool_files.py: `time,name=value,...`; the previous release's `cpu,time`
lines still read) to a segment file and counted as spooled once the write has
returned (fsync optional). `state.json` names the segment and the byte offset of the oldest sample not
yet acknowledged; it is replaced atomically right after each acknowledgement, so a crash can at most
forget the acknowledgement of the last batch (the sender then checks with the server before resending).
When the spool holds `limit` samples, each new one drops the oldest. Compaction copies the live tail to a
new segment when the dead head outweighs it, so the files stay about as large as the samples they hold."""

from __future__ import annotations

import bisect
import os
import threading
from pathlib import Path
from types import TracebackType

from perfmon.agent.adapters import spool_files as files
from perfmon.agent.model import Batch, Sample, SpoolCounts
from perfmon.agent.ports import SampleSpool, SpoolWriteError

COMPACT_MIN_BYTES = 1 << 20


class Spool(SampleSpool):
    """A FIFO of samples on disk in one folder, bounded by `limit`; thread-safe (sampler and sender)."""

    def __init__(
        self, folder: Path, limit: int, *, fsync: bool = False, compact_min_bytes: int = COMPACT_MIN_BYTES
    ) -> None:
        if limit < 1:
            raise ValueError("the spool limit must be at least 1")
        self.folder, self._limit, self._fsync = folder, limit, fsync
        self._compact_min_bytes = compact_min_bytes
        self._lock = threading.Condition()
        files.make_private_folder(folder)
        self._folder_lock = files.lock_folder(folder)
        state = files.read_state(folder)
        # Saved from the start, so that the state file alone ever says which segment is current.
        files.write_state(folder, state, fsync)
        self._segment = state.segment
        # Leftovers of an interrupted compaction: whichever segment the state does not name.
        for number in files.segment_numbers(folder):
            if number != self._segment:
                files.segment_path(folder, number).unlink()
        path = files.segment_path(folder, self._segment)
        open(path, "ab", opener=files.private).close()
        self._size = files.repair_torn_tail(path)
        self._head = min(state.head, self._size)
        self._pending = files.count_lines(path, self._head)
        self._open_segment()
        self._dropped = self._quarantined = 0
        while self._pending > self._limit:  # the limit may have been lowered since the last run
            self._drop_oldest()

    def append(self, sample: Sample) -> None:
        """Write the sample; when the spool is full, drop the oldest first. SpoolWriteError on failure."""
        line = files.encode(sample)
        with self._lock:
            if self._pending >= self._limit:
                self._drop_oldest()
            try:
                if self._writer.write(line) != len(line):
                    raise OSError("short write")
                if self._fsync:
                    os.fsync(self._writer.fileno())
            except OSError as error:
                # Cut whatever part was written, so that the next line starts on a line of its own.
                os.ftruncate(self._writer.fileno(), self._size)
                self._open_segment()
                raise SpoolWriteError(f"cannot write to the spool in {self.folder}: {error}") from error
            self._size += len(line)
            self._pending += 1
            self._lock.notify_all()

    def peek(self, max_count: int) -> Batch:
        """Up to max_count of the oldest samples, left in the spool; a damaged line is quarantined."""
        with self._lock:
            samples: list[Sample] = []
            ends: list[int] = []
            self._reader.seek(self._head)
            position = self._head
            while len(samples) < max_count and position < self._size:
                line = self._reader.readline()
                position += len(line)
                sample = files.decode(line)
                if sample is None and samples:
                    break  # the next peek starts at it and sets it aside
                if sample is None:
                    self._set_aside([line], position)
                    continue
                samples.append(sample)
                ends.append(position)
            return Batch(tuple(samples), tuple(ends), self._segment)

    def commit(self, batch: Batch, count: int | None = None) -> None:
        """The server has the batch's first `count` samples (all by default): forget them, durably."""
        count = len(batch.samples) if count is None else count
        with self._lock:
            if count == 0 or batch.segment != self._segment:
                return
            # Samples dropped for room while their batch was on its way got there all the same.
            delivered_after_drop = bisect.bisect_right(batch.ends, self._head, 0, count)
            self._dropped -= delivered_after_drop
            self._advance(batch.ends[count - 1], count - delivered_after_drop)

    def quarantine(self, batch: Batch, count: int) -> None:
        """Move the batch's first `count` samples, which the server refuses, to quarantine.csv."""
        with self._lock:
            if count == 0 or batch.segment != self._segment:
                return
            already_dropped = bisect.bisect_right(batch.ends, self._head, 0, count)
            lines = [files.encode(sample) for sample in batch.samples[already_dropped:count]]
            if lines:
                self._set_aside(lines, batch.ends[count - 1])

    def wait_for_samples(self, timeout: float) -> bool:
        """Block until something is spooled or the timeout passes; whether something is."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pending > 0, timeout)

    def counts(self) -> SpoolCounts:
        with self._lock:
            return SpoolCounts(self._pending, self._dropped, self._quarantined)

    def compact(self) -> None:
        """Copy the live samples to a fresh segment when the dead head of this one outweighs them."""
        with self._lock:
            live = self._size - self._head
            if self._head < max(live, self._compact_min_bytes):
                return
            old_path = files.segment_path(self.folder, self._segment)
            new_segment = self._segment + 1
            with open(files.segment_path(self.folder, new_segment), "wb", opener=files.private) as new_file:
                self._reader.seek(self._head)
                while chunk := self._reader.read(1 << 20):
                    new_file.write(chunk)
                if self._fsync:
                    new_file.flush()
                    os.fsync(new_file.fileno())
            # Writing the state is the switch: before it the old segment counts, after it the new one.
            files.write_state(self.folder, files.SpoolState(new_segment, 0), self._fsync)
            self._segment, self._head, self._size = new_segment, 0, live
            self._open_segment()
            old_path.unlink()

    def close(self) -> None:
        """Save where the head is (drops included) and release the folder."""
        with self._lock:
            files.write_state(self.folder, files.SpoolState(self._segment, self._head), self._fsync)
            self._writer.close()
            self._reader.close()
            self._folder_lock.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _drop_oldest(self) -> None:
        self._reader.seek(self._head)
        self._head += len(self._reader.readline())
        self._pending -= 1
        self._dropped += 1
        # The head is saved with the next acknowledgement or at close; a crash before that only means
        # the next run drops the same samples again.

    def _set_aside(self, lines: list[bytes], end: int) -> None:
        with open(self.folder / files.QUARANTINE_FILE, "ab", opener=files.private) as quarantine:
            quarantine.writelines(lines)
        self._quarantined += len(lines)
        self._advance(end, len(lines))

    def _advance(self, end: int, count: int) -> None:
        if end <= self._head:
            return
        self._head = end
        self._pending -= count
        files.write_state(self.folder, files.SpoolState(self._segment, self._head), self._fsync)

    def _open_segment(self) -> None:
        for handle in (getattr(self, "_writer", None), getattr(self, "_reader", None)):
            if handle is not None:
                handle.close()
        path = files.segment_path(self.folder, self._segment)
        # Unbuffered appends: each sample is in the file when append() returns.
        self._writer = open(path, "ab", buffering=0, opener=files.private)  # noqa: SIM115 - lives as long as the spool
        self._reader = open(path, "rb")  # noqa: SIM115
