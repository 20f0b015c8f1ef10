"""The README's "Deploying agents" section against the agent itself: its command lines and its systemd
unit's ExecStart parse with the agent's own parser and pass its usage checks, and the unit stops
restarting on the exit status the agent gives a refused key. An example that drifts from the flags fails
here, not on a user's machine."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

from perfmon.agent import command
from perfmon.agent.agent import EXIT_KEY_REFUSED, KEY_VARIABLE
from perfmon.agent.command import EXIT_USAGE

README = Path(__file__).resolve().parents[2] / "README.md"
# What systemd puts in place of the specifiers the unit uses: %H the host name, %S /var/lib.
SPECIFIERS = {"%H": "web-1", "%S": "/var/lib"}


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def _unit() -> dict[str, list[str]]:
    """The unit file's settings, name -> values in order (systemd allows a name more than once)."""
    [unit] = [block for block in _blocks(_section("Deploying agents"), "ini") if "[Service]" in block]
    settings: dict[str, list[str]] = {}
    for line in unit.replace("\\\n", " ").splitlines():
        if line.strip() and not line.startswith(("#", "[")):
            name, _, value = line.partition("=")
            settings.setdefault(name.strip(), []).append(value.strip())
    return settings


# The README writes a key as this placeholder; a real one is pmk_ and 43 characters.
PLACEHOLDER = "pmk_..."
A_KEY = "pmk_" + "Ab3-_" * 8 + "xyz"


def _parse_agent_command(argv: list[str]) -> argparse.Namespace:
    """`perfmon agent ...` as the program's path and its arguments, through the agent's own parser."""
    assert Path(argv[0]).name == "perfmon", argv
    parser = argparse.ArgumentParser(prog="perfmon")
    command.add_parser(parser.add_subparsers(dest="command", required=True))
    arguments = parser.parse_args(argv[1:])  # exits (fails the test) on an unknown or malformed flag
    assert arguments.command == "agent"
    return arguments


def test_the_units_exec_start_is_a_valid_agent_command_line_with_the_key_from_its_environment_file() -> None:
    unit = _unit()
    [exec_start] = unit["ExecStart"]
    for specifier, value in SPECIFIERS.items():
        exec_start = exec_start.replace(specifier, value)

    arguments = _parse_agent_command(shlex.split(exec_start))

    assert (arguments.host, arguments.user, arguments.key, arguments.register) == ("web-1", None, None, False)
    [state_directory] = unit["StateDirectory"]
    assert arguments.spool_dir == Path("/var/lib") / state_directory
    # The key comes from the environment file, whose one line the section shows.
    [(name, key)] = re.findall(r"one line: (\w+)=(\S+)", _section("Deploying agents"))
    assert name == KEY_VARIABLE and key == PLACEHOLDER
    assert command.usage_problem(arguments, {name: A_KEY}) is None


def test_the_unit_restarts_on_failure_but_not_on_a_refused_key() -> None:
    unit = _unit()

    assert unit["Restart"] == ["on-failure"]
    # A refused key and bad usage stay as they are however often systemd restarts the agent.
    assert unit["RestartPreventExitStatus"] == [f"{EXIT_USAGE} {EXIT_KEY_REFUSED}"]
    assert unit["EnvironmentFile"] and unit["User"]
    assert unit["StateDirectoryMode"] == ["0700"]


def test_the_sections_shell_command_lines_are_valid_agent_command_lines() -> None:
    lines = [
        line
        for block in _blocks(_section("Deploying agents"), "sh")
        for line in block.splitlines()
        if " agent " in line and not line.lstrip().startswith("#")
    ]
    assert lines, "the section shows the agent's command line"
    for line in lines:
        arguments = _parse_agent_command(shlex.split(line, comments=True))
        assert command.usage_problem(arguments, {KEY_VARIABLE: A_KEY}) is None, line


def test_the_section_names_the_exit_status_of_a_refused_key() -> None:
    assert f"`{EXIT_KEY_REFUSED}` the key refused" in _section("Deploying agents")
