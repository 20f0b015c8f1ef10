"""The agent's CPU meter on this machine's real counters, under a real, time-bounded load."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from perfmon.agent.adapters.cpu import CpuMeter
from perfmon.agent.adapters.spool import Spool
from perfmon.agent.sampler import Sampler
from perfmon.agent.status import StatusReport

BUSY_SECONDS = 3.0  # the load stops by itself after this, whatever happens to the test
INTERVAL = 0.5
# A process spinning on one CPU keeps at least a quarter of one CPU busy, even on a loaded machine
# (if it gets less, the others are busier still).
AT_LEAST = 25.0 / (os.cpu_count() or 1)


def test_the_first_sample_under_load_is_the_load_although_the_meter_was_made_on_another_thread(
    tmp_path: Path,
) -> None:
    spin = f"import time\nend = time.monotonic() + {BUSY_SECONDS}\nwhile time.monotonic() < end: pass"
    load = subprocess.Popen([sys.executable, "-c", spin])
    try:
        meter = CpuMeter()  # made here, read on the sampler's thread, as `perfmon agent` does
        with Spool(tmp_path / "spool", limit=100) as spool:
            stop = threading.Event()
            sampler = threading.Thread(
                target=Sampler(meter, spool, StatusReport(), INTERVAL).run, args=(stop,), name="sampler"
            )
            sampler.start()
            deadline = time.monotonic() + 10
            while spool.counts().pending == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            stop.set()
            sampler.join(timeout=5)
            first = spool.peek(1).samples
    finally:
        load.kill()
        load.wait(timeout=5)

    assert first, "no sample within 10 s"
    assert first[0].cpu >= AT_LEAST > 0
