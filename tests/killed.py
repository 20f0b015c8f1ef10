"""Crash tests' child processes: a Python snippet that does part of a write, says so, and is killed."""

from __future__ import annotations

import signal
import subprocess
import sys


def kill_when_it_says(code: str, arguments: list[str], line: str) -> None:
    """Run `python -c code arguments...`, wait for it to print `line` (it has done what a crash is to
    interrupt, and waits), then kill it with SIGKILL, as a crash or `kill -9` would."""
    child = subprocess.Popen([sys.executable, "-c", code, *arguments], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == line
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
