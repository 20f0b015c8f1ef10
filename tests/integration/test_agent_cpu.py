"""The agent's machine meter on this machine's real counters (psutil), under a real, time-bounded load."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from perfmon.agent.adapters.machine import MachineMeter, psutil_reading
from perfmon.agent.adapters.spool import Spool
from perfmon.agent.model import CATALOGUE
from perfmon.agent.sampler import Sampler
from perfmon.agent.status import StatusReport

BUSY_SECONDS = 3.0  # the load stops by itself after this, whatever happens to the test
INTERVAL = 0.5
# A process spinning on one CPU keeps at least a quarter of one CPU busy, even on a loaded machine
# (if it gets less, the others are busier still).
AT_LEAST = 25.0 / (os.cpu_count() or 1)


def test_the_first_sample_holds_the_load_and_the_machines_gauges_though_the_meter_was_made_on_another_thread(
    tmp_path: Path,
) -> None:
    spin = f"import time\nend = time.monotonic() + {BUSY_SECONDS}\nwhile time.monotonic() < end: pass"
    load = subprocess.Popen([sys.executable, "-c", spin])
    try:
        meter = MachineMeter(
            psutil_reading("/")
        )  # made here, read on the sampler's thread, as the agent does
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
    metrics = first[0].metrics
    assert metrics["cpu"] >= AT_LEAST > 0
    # Every machine has these; rates and temp depend on what it has (disks, interfaces, sensors).
    assert {"mem", "swap", "load1", "load5", "load15", "disk"} <= set(metrics) <= set(CATALOGUE)
    assert all(value >= 0 for name, value in metrics.items() if name != "temp")
    assert 0 <= metrics["mem"] <= 100 and 0 <= metrics["disk"] <= 100
