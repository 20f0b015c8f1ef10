"""Summarise a py-spy profile (`--format raw`, as `python -m bench --profile DIR` records them).

    python -m bench.hotspots DIR/post-file-cpu.txt [--top 20]

Prints the functions with the most self time (the stack's innermost frame) and total time (anywhere in
the stack), and self time by package, each as a share of the busy samples: py-spy counts waitress's
idle worker threads (waiting in `Condition.wait` for a request) as active; they are left out unless
`--include-idle`.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_IDLE_LEAVES = {"Condition.wait (threading.py)"}
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _parse(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


def _function(frame: str) -> str:
    match = _FRAME.match(frame)
    return f"{match['function']} ({match['file']})" if match else frame


def _package(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    file = match["file"]
    if file.startswith("<"):
        return file
    parts = file.split("/")
    if parts[0] == "perfmon" and len(parts) > 2:
        return "/".join(parts[:3]) if parts[1] == "adapters" else "/".join(parts[:2])
    return parts[0] if len(parts) > 1 else f"stdlib {parts[0]}"


def summarise(path: Path, top: int, include_idle: bool = False) -> str:
    stacks = _parse(path)
    everything = sum(count for _, count in stacks)
    if not include_idle:
        stacks = [(frames, count) for frames, count in stacks if _function(frames[-1]) not in _IDLE_LEAVES]
    total = sum(count for _, count in stacks) or 1
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    for frames, count in stacks:
        own[_function(frames[-1])] += count
        packages[_package(frames[-1])] += count
        for function in {_function(frame) for frame in frames}:
            anywhere[function] += count
    lines = [f"{path}: {total} busy samples of {everything}", ""]
    for title, counter in (("self", own), ("total", anywhere), ("self by package", packages)):
        lines.append(f"{title}:")
        for name, count in counter.most_common(top):
            lines.append(f"  {count / total:6.1%}  {name}")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.hotspots",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--include-idle", action="store_true", help="keep idle workers' samples")
    arguments = parser.parse_args()
    for path in arguments.profiles:
        print(summarise(path, arguments.top, arguments.include_idle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
