"""What a running agent's spool says, read from its files by tests that run `perfmon agent` as a process."""

from __future__ import annotations

from pathlib import Path

from perfmon.agent.adapters.spool_files import STATE_FILE, read_state, segment_path


def acknowledged_samples(spool_dir: Path) -> int:
    """How many samples the agent has had acknowledged: the lines before the head its state file names."""
    state = read_state(spool_dir) if (spool_dir / STATE_FILE).exists() else None
    if state is None or not segment_path(spool_dir, state.segment).exists():
        return 0
    return segment_path(spool_dir, state.segment).read_bytes()[: state.head].count(b"\n")
