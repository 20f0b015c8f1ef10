"""`perfmon agent`: its flags, where its key or password and its spool folder come from, and its signal
handling."""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import logging
import os
import re
import signal
import socket
import sys
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from perfmon.agent.adapters.http_client import ServerClient
from perfmon.agent.adapters.machine import MachineMeter, psutil_reading
from perfmon.agent.adapters.spool import Spool
from perfmon.agent.adapters.spool_files import SpoolLocked, make_private_folder, private
from perfmon.agent.agent import (
    EXIT_FAILED,
    EXIT_KEY_REFUSED,
    EXIT_STOPPED,
    KEY_VARIABLE,
    Agent,
    AgentOptions,
)
from perfmon.agent.status import StatusReport

logger = logging.getLogger("perfmon.agent")

PASSWORD_VARIABLE = "PERFMON_PASSWORD"  # noqa: S105 - the variable's name, not a password
KEY_PREFIX = "pmk_"  # PROTOCOL.md part 4: every key starts so (the server's KEY_PREFIX; the agent's copy)
# PROTOCOL.md part 4: pmk_ and 43 URL-safe base64 characters (32 random bytes).
_KEY_FORM = re.compile(KEY_PREFIX + r"[A-Za-z0-9_-]{43}")
EXIT_USAGE = 2
DEFAULT_SPOOL_LIMIT = 1_000_000
TARGET_FILE = "target.json"
MAX_HOST_NAME = 128  # PROTOCOL.md part 3: a host name follows the user-name rules


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `agent` subcommand; there is no password flag on purpose: flags show in `ps`."""
    agent = commands.add_parser(
        "agent",
        help="sample this machine (CPU, memory, swap, load, disk, disk and network I/O, temperature) and "
        "post it to a perfmon server, spooling while it is away",
        description=f"Logs in with an ingest key from ${KEY_VARIABLE} (the way to deploy agents), or as "
        f"--user with the password from ${PASSWORD_VARIABLE}, else from a prompt (there is no password "
        f"flag). Exit status: {EXIT_STOPPED} stopped by SIGTERM or Ctrl-C, {EXIT_FAILED} a fatal error, "
        f"{EXIT_USAGE} bad usage, {EXIT_KEY_REFUSED} the server refused the key (revoked, unknown, or not an "
        "ingest key: restarting with it cannot help). Unsent samples always stay in the spool.",
    )
    agent.add_argument("--server", required=True, help="the server's base URL, e.g. http://127.0.0.1:8080")
    agent.add_argument(
        "--key",
        help=f"an ingest key ({KEY_PREFIX}...) to log in with, instead of --user and a password; a flag "
        f"shows in `ps` to every user of the machine, so deploy with ${KEY_VARIABLE} instead",
    )
    agent.add_argument(
        "--user",
        help=f"the user to post as, with the password from ${PASSWORD_VARIABLE} or a prompt (not with a "
        "key: the server knows the key's user)",
    )
    agent.add_argument(
        "--register", action="store_true", help="register --user first (or log in if known); not with a key"
    )
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
        "$XDG_STATE_HOME/perfmon-agent, else ~/.local/state/perfmon-agent; with a key, per server and "
        "host, since the agent does not know the key's user: a new key given after a revocation sends "
        "what the old one left)",
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
    """Run the agent until SIGTERM or Ctrl-C: EXIT_STOPPED (0) after a clean stop, EXIT_FAILED (1) after a
    fatal error, EXIT_USAGE (2) on bad usage, EXIT_KEY_REFUSED (77) when the server refuses the key."""
    environ = os.environ if environ is None else environ
    problem = usage_problem(arguments, environ)
    if problem is not None:
        logger.error("%s", problem)
        return EXIT_USAGE
    host, key = arguments.host, given_key(arguments, environ)
    try:
        if key is not None:
            server = ServerClient.with_key(arguments.server, key.text, host)
        else:
            password = read_password(environ)
            if not password:
                logger.error(
                    "no password: set %s or run the agent on a terminal to be asked", PASSWORD_VARIABLE
                )
                return EXIT_USAGE
            server = ServerClient(arguments.server, arguments.user, password, host)
    except ValueError as bad_url:
        logger.error("%s", bad_url)
        return EXIT_USAGE
    user = server.user  # None with a key
    folder = arguments.spool_dir or default_spool_dir(server.base_url, user, host, environ)
    try:
        claim_spool_dir(folder, server.base_url, user, host)
        spool = Spool(folder, arguments.spool_limit)
        # Counters read now, so that the first sample, one interval on, has every rate.
        meter = MachineMeter(psutil_reading(arguments.disk_path))
    except (SpoolLocked, OSError, ValueError) as problem:
        logger.error("cannot use the spool folder: %s", problem)
        return EXIT_FAILED
    report = StatusReport(sys.stderr if sys.stderr.isatty() else None)
    with spool:
        options = AgentOptions(interval=arguments.interval, register=arguments.register)
        agent = Agent(server, spool, meter, report, options)
        who = "with a key" if user is None else f"for {user}"
        logger.info("agent %s on host %s at %s, spool %s", who, host, server.base_url, folder)
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


@dataclass(frozen=True)
class GivenKey:
    """The key the agent was given, and where from (a flag or the variable), to name in messages: the
    key itself is never shown."""

    text: str = field(repr=False)
    source: str


def given_key(arguments: argparse.Namespace, environ: Mapping[str, str]) -> GivenKey | None:
    """--key, else a non-empty $PERFMON_AGENT_KEY, else None (log in with a password). Surrounding
    whitespace is dropped (a key has none: URL-safe base64), so a key pasted with a newline still works."""
    if arguments.key is not None:
        return GivenKey(arguments.key.strip(), "--key")
    text = environ.get(KEY_VARIABLE, "").strip()
    return GivenKey(text, f"${KEY_VARIABLE}") if text else None


def usage_problem(arguments: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    """What is wrong with the command line and the environment, as one sentence, or None; checked before
    anything starts (no spool folder made, no password asked). Never names the key, only its source."""
    if arguments.interval <= 0 or arguments.spool_limit < 1:
        return "--interval must be positive and --spool-limit at least 1"
    if not is_host_name(arguments.host):
        return f"--host must be 1..{MAX_HOST_NAME} characters without control characters"
    if not os.path.exists(arguments.disk_path):
        return f"--disk-path {arguments.disk_path} does not exist"
    key = given_key(arguments, environ)
    if key is None:
        if arguments.user is None:
            return (
                f"no credentials: set {KEY_VARIABLE} to an ingest key, or give --user to log in with a "
                "password"
            )
        return None
    if arguments.user is not None:
        other = "leave out --key" if key.source == "--key" else f"unset {KEY_VARIABLE}"
        return (
            f"--user does not go with a key (from {key.source}): the server knows the key's user; leave out "
            f"--user to log in with the key, or {other} to log in as --user with a password"
        )
    if arguments.register:
        return f"--register does not go with a key (from {key.source}): a key's user is registered already"
    if not _KEY_FORM.fullmatch(key.text):
        # Cut short or quoted (a key file's line in quotes): said before the server is asked, never shown.
        return (
            f"the key from {key.source} is not a whole perfmon key ({KEY_PREFIX} and 43 characters of "
            "A-Z, a-z, 0-9, - and _; no quotes)"
        )
    return None


def read_password(environ: Mapping[str, str]) -> str | None:
    """From the environment, else asked on the terminal; never from a flag."""
    password = environ.get(PASSWORD_VARIABLE)
    if password:
        return password
    if sys.stdin.isatty():
        return getpass.getpass("perfmon password: ")
    return None


def default_spool_dir(server: str, user: str | None, host: str, environ: Mapping[str, str]) -> Path:
    """A folder per server, user and host, named by a digest: names are data, never paths.

    Two agents of one user on one machine with different --host each get their own. The release before
    hosts kept one folder per server and user: while this host has no folder of its own, that one is
    used if it is still the previous release's, or already this host's, so its samples still drain.

    With a key (user None) the agent does not know the user: the folder is per server and host, so a new
    key given after a revocation finds and sends what the revoked one left."""
    base = Path(environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")) / "perfmon-agent"
    if user is None:
        # No user name is empty, so this never names a folder of an agent logging in with a password.
        return base / _digest(server, "", host)
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


def _target(server: str, user: str | None, host: str) -> dict[str, str]:
    """What a spool folder's target file says it holds samples for; with a key, no user."""
    if user is None:
        return {"server": server, "host": host}
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


def claim_spool_dir(folder: Path, server: str, user: str | None, host: str) -> None:
    """Refuse a spool folder holding another user's, server's or host's samples: they would go to the wrong
    place. A folder claimed by the release before hosts (no host in it) is taken over for this host: its
    samples were taken on this machine. With a key (user None) the claim names no user: any key of the
    server and host may send what it holds, and a folder of an agent with a password is not one of those.
    ValueError for a folder claimed otherwise; OSError when it cannot be made or written."""
    make_private_folder(folder)
    target = _target(server, user, host)
    path = folder / TARGET_FILE
    claimed = _claimed_by(folder)
    if user is not None and claimed == {"server": server, "user": user}:
        claimed = None  # the previous release's claim: ours now
    if claimed is None:
        with open(path, "w", opener=private) as file:
            file.write(json.dumps(target))
        return
    if claimed != target:
        raise ValueError(
            f"{folder} holds samples for another server, user or host, or of an agent logging in the other "
            f"way (key or password) ({path}); use another --spool-dir"
        )
