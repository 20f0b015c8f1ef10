"""The agent is a client application: it shares no code with the server, and the server only starts it.

import-linter checks the same contract in CI; this keeps it checked in a plain test run too."""

from __future__ import annotations

import ast
from pathlib import Path

import perfmon

PACKAGE = Path(perfmon.__file__).parent
SERVER_PACKAGES = (
    "perfmon.domain",
    "perfmon.adapters",
    "perfmon.entrypoints",
    "perfmon.bootstrap",
    "perfmon.config",
)


def _imports(module: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _is_under(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def test_the_agent_imports_nothing_of_the_server() -> None:
    modules = list((PACKAGE / "agent").rglob("*.py"))
    assert len(modules) > 5, "the agent's package moved: update this test"
    for module in modules:
        shared = {name for name in _imports(module) if _is_under(name, SERVER_PACKAGES)}
        assert not shared, f"{module.relative_to(PACKAGE)} imports {shared}"


def test_only_the_command_line_imports_the_agent() -> None:
    for module in PACKAGE.rglob("*.py"):
        relative = module.relative_to(PACKAGE)
        if relative.parts[0] == "agent" or relative == Path("entrypoints/cli.py"):
            continue
        uses = {name for name in _imports(module) if _is_under(name, ("perfmon.agent",))}
        assert not uses, f"{relative} imports {uses}"
