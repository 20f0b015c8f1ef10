"""A baseline perfmon measured side by side with this one (`python -m bench --baseline DIR`).

DIR holds another version's perfmon package, e.g. the release before issue 11:
`git archive 70a4571 perfmon | tar -x -C DIR`. Its servers run `python -m perfmon serve` with
PYTHONPATH=DIR. Its storages are laid out (file) or migrated (db: its own `perfmon init-db`) by that
version, and so filled and checked by that version's adapters: in a helper process on the same path,
`python -m bench.baseline KIND LOCATION`, which runs bench/stores.py's FileStore or DatabaseStore there
and answers the bench's calls, one JSON line each way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .processes import BENCH_DIR, PACKAGE_ROOT, BenchError

# The Store methods the helper answers (and nothing else: it runs what it is sent).
CALLS = ("new_sessions", "fill", "stored_times", "existing_sessions", "existing_users", "sessions_of")


def check_tree(tree: Path) -> Path:
    """The tree, resolved; BenchError unless it holds a perfmon package."""
    if not (tree / "perfmon" / "__init__.py").is_file():
        raise BenchError(
            f"--baseline {tree}: no perfmon/__init__.py there (git archive COMMIT perfmon | tar -x -C DIR)"
        )
    return tree.resolve()


def environment(tree: Path, with_bench: bool = False) -> dict[str, str]:
    """The environment of a process that imports the tree's perfmon (and the bench package, after it)."""
    path = [str(tree), str(PACKAGE_ROOT)] if with_bench else [str(tree)]
    # PYTHONSAFEPATH: no current folder ahead of the path, so never this checkout's perfmon/.
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), "PYTHONSAFEPATH": "1"}


class BaselineStore:
    """A storage of the baseline's own making, reached through its helper process; the same calls as
    bench.stores.Store."""

    def __init__(self, tree: Path, kind: str, location: str, log_path: Path) -> None:
        self.kind = kind
        self.location = location
        self.url = location  # the database's, for kind "db"
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in close())
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.baseline", kind, location],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=BENCH_DIR,
            env=environment(tree, with_bench=True),
            text=True,
        )
        self._call("ready")

    def _call(self, name: str, *arguments: Any) -> Any:
        assert self._process.stdin is not None and self._process.stdout is not None
        try:
            self._process.stdin.write(json.dumps([name, *arguments]) + "\n")
            self._process.stdin.flush()
            line = self._process.stdout.readline()
        except OSError:
            line = ""
        if not line:
            self.close()
            raise BenchError(f"the baseline's {self.kind} storage helper stopped; see {self._log.name}")
        answer = json.loads(line)
        if "error" in answer:
            raise BenchError(f"the baseline's {self.kind} storage: {name}: {answer['error']}")
        return answer["result"]

    def serve_flags(self) -> list[str]:
        if self.kind == "file":
            return ["--storage", "file", "--data-dir", self.location]
        return ["--storage", "db", "--database-url", self.location]

    def new_sessions(self, count: int) -> list[str]:
        return list(self._call("new_sessions", count))

    def fill(self, token: str, samples: Sequence[tuple[float, float]]) -> None:
        self._call("fill", token, [list(sample) for sample in samples])

    def stored_times(self, tokens: Iterable[str], start: float, end: float) -> list[float]:
        return list(self._call("stored_times", list(tokens), start, end))

    def existing_sessions(self, tokens: Iterable[str]) -> int:
        return int(self._call("existing_sessions", list(tokens)))

    def existing_users(self, names: Iterable[str]) -> int:
        return int(self._call("existing_users", list(names)))

    def sessions_of(self, user: str) -> int:
        return int(self._call("sessions_of", user))

    def close(self) -> None:
        """End the helper (it closes its storage's connections); the storage stays until cleanup."""
        if self._process.poll() is None:
            assert self._process.stdin is not None
            try:
                self._process.stdin.close()
                self._process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait(timeout=30)
        self._log.close()


def _serve(kind: str, location: str) -> int:
    """The helper's loop: a JSON array [call, arguments...] per line in, {"result": ...} per line out."""
    from .stores import DatabaseStore, FileStore, Store  # the tree's perfmon: only in the helper

    store: Store = FileStore(Path(location)) if kind == "file" else DatabaseStore(location)
    try:
        for line in sys.stdin:
            name, *arguments = json.loads(line)
            try:
                if name == "ready":
                    result: object = True
                elif name in CALLS:
                    result = getattr(store, name)(*arguments)
                else:
                    raise ValueError(f"no such call {name!r}")
            except Exception as error:  # the bench reports it and stops
                answer: dict[str, object] = {"error": repr(error)}
            else:
                answer = {"result": result}
            print(json.dumps(answer), flush=True)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1], sys.argv[2]))
