"""`perfmon agent`: its flags, where its password and spool folder come from, and its signal handling."""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import logging
import os
import signal
import socket
import sys
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from perfmon.agent.adapters.http_client import ServerClient
from perfmon.agent.adapters.machine import MachineMeter, psutil_reading
from perfmon.agent.adapters.spool import Spool
from perfmon.agent.adapters.spool_files import SpoolLocked, make_private_folder, private
from perfmon.agent.agent import Agent, AgentOptions
from perfmon.agent.status import StatusReport

logger = logging.getLogger("perfmon.agent")

PASSWORD_VARIABLE = "PERFMON_PASSWORD"  # noqa: S105 - the variable's name, not a password
DEFAULT_SPOOL_LIMIT = 1_000_000
TARGET_FILE = "target.json"
MAX_HOST_NAME = 128  # PROTOCOL.md part 3: a host name follows the user-name rules


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `agent` subcommand; there is no password flag on purpose: flags show in `ps`."""
    agent = commands.add_parser(
        "agent",
        help="sample this machine (CPU, memory, swap, load, disk, disk and network I/O, temperature) and "
        "post it to a perfmon server, spooling while it is away",
        description=f"The password comes from ${PASSWORD_VARIABLE}, else from a prompt.",
    )
    agent.add_argument("--server", required=True, help="the server's base URL, e.g. http://127.0.0.1:8080")
    agent.add_argument("--user", required=True, help="the user to post as")
    agent.add_argument("--register", action="store_true", help="register the user first (or log in if known)")
    agent.add_argument(
        "--host",
        default=socket.gethostname(),
        help="the host the samples belong to: 1..128 characters, no control characters (default: this "
        "machine's host name); every run on one host adds to one history",
    )
    agent.add_argument(
        "--disk-path", default="/", help="a path on the filesystem whose use is the `disk` metric (default /)"
    )
    agent.add_argument("--interval", type=float, default=1.0, help="seconds between samples (default 1)")
    agent.add_argument(
        "--spool-dir",
        type=Path,
        help="where unsent samples wait (default: a folder per server, user and host under "
        "$XDG_STATE_HOME/perfmon-agent, else ~/.local/state/perfmon-agent)",
    )
    agent.add_argument(
        "--spool-limit",
        type=int,
        default=DEFAULT_SPOOL_LIMIT,
        help=f"most samples kept while the server is away (default {DEFAULT_SPOOL_LIMIT}); oldest go first",
    )
    agent.add_argument(
        "--log-level", type=str.upper, default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR")
    )


def run(arguments: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """Run the agent until SIGTERM or Ctrl-C: 0 after a clean stop, 1 after a fatal error, 2 on bad usage."""
    environ = os.environ if environ is None else environ
    if arguments.interval <= 0 or arguments.spool_limit < 1:
        logger.error("--interval must be positive and --spool-limit at least 1")
        return 2
    host = arguments.host
    if not is_host_name(host):
        logger.error("--host must be 1..%d characters without control characters", MAX_HOST_NAME)
        return 2
    if not os.path.exists(arguments.disk_path):
        logger.error("--disk-path %s does not exist", arguments.disk_path)
        return 2
    password = read_password(environ)
    if not password:
        logger.error("no password: set %s or run the agent on a terminal to be asked", PASSWORD_VARIABLE)
        return 2
    try:
        server = ServerClient(arguments.server, arguments.user, password, host)
    except ValueError as problem:
        logger.error("%s", problem)
        return 2
    folder = arguments.spool_dir or default_spool_dir(server.base_url, arguments.user, host, environ)
    try:
        claim_spool_dir(folder, server.base_url, arguments.user, host)
        spool = Spool(folder, arguments.spool_limit)
        # Counters read now, so that the first sample, one interval on, has every rate.
        meter = MachineMeter(psutil_reading(arguments.disk_path))
    except (SpoolLocked, OSError, ValueError) as problem:
        logger.error("cannot use the spool folder: %s", problem)
        return 1
    report = StatusReport(sys.stderr if sys.stderr.isatty() else None)
    with spool:
        options = AgentOptions(interval=arguments.interval, register=arguments.register)
        agent = Agent(server, spool, meter, report, options)
        logger.info("agent for %s on host %s at %s, spool %s", arguments.user, host, server.base_url, folder)
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def stop_on_signal(signum: int, frame: FrameType | None) -> None:
            # The first Ctrl-C or SIGTERM stops cleanly; a second one acts as it would have without us.
            agent.stop()
            signal.signal(signum, previous[signal.Signals(signum)])

        for sig in previous:
            signal.signal(sig, stop_on_signal)
        try:
            return agent.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def read_password(environ: Mapping[str, str]) -> str | None:
    """From the environment, else asked on the terminal; never from a flag."""
    password = environ.get(PASSWORD_VARIABLE)
    if password:
        return password
    if sys.stdin.isatty():
        return getpass.getpass("perfmon password: ")
    return None


def default_spool_dir(server: str, user: str, host: str, environ: Mapping[str, str]) -> Path:
    """A folder per server, user and host, named by a digest: names are data, never paths.

    Two agents of one user on one machine with different --host each get their own. The release before
    hosts kept one folder per server and user: while this host has no folder of its own, that one is
    used if it is still the previous release's, or already this host's, so its samples still drain."""
    base = Path(environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")) / "perfmon-agent"
    folder = base / _digest(server, user, host)
    previous = base / _digest(server, user)
    if not folder.exists() and _claimed_by(previous) in (
        {"server": server, "user": user},
        _target(server, user, host),
    ):
        return previous
    return folder


def _digest(*names: str) -> str:
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def _target(server: str, user: str, host: str) -> dict[str, str]:
    return {"server": server, "user": user, "host": host}


def _claimed_by(folder: Path) -> object:
    """The claim in a spool folder's target file; None without one, {} for one that is not JSON."""
    try:
        return json.loads((folder / TARGET_FILE).read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return {}


def is_host_name(name: str) -> bool:
    """PROTOCOL.md part 3: 1..128 characters, no control characters (the server's rule, checked here so
    that a bad --host is a usage error at start rather than a refused log in)."""
    control = any(unicodedata.category(char) in ("Cc", "Cs") for char in name)
    return 1 <= len(name) <= MAX_HOST_NAME and not control


def claim_spool_dir(folder: Path, server: str, user: str, host: str) -> None:
    """Refuse a spool folder holding another user's, server's or host's samples: they would go to the wrong
    place. A folder claimed by the release before hosts (no host in it) is taken over for this host: its
    samples were taken on this machine."""
    make_private_folder(folder)
    target = _target(server, user, host)
    path = folder / TARGET_FILE
    claimed = _claimed_by(folder)
    if isinstance(claimed, dict) and claimed == {"server": server, "user": user}:
        claimed = None  # the previous release's claim: ours now
    if claimed is None:
        with open(path, "w", opener=private) as file:
            file.write(json.dumps(target))
        return
    if claimed != target:
        raise ValueError(
            f"{folder} holds samples for another server, user or host ({path}); use another --spool-dir"
        )
