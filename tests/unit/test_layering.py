"""The domain's purity, checked on the source: it imports the standard library and itself, and reads no
environment or file. The rules between packages (layers point down, the HTTP entrypoint knows no
adapter, the agent shares nothing with the server) are import-linter contracts in pyproject.toml, which
`.ci/run` checks with `lint-imports`."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import perfmon

PACKAGE = Path(perfmon.__file__).parent


def _imports(module: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _imports_under(folder: str) -> dict[str, set[str]]:
    return {str(path.relative_to(PACKAGE)): _imports(path) for path in (PACKAGE / folder).rglob("*.py")}


def test_domain_imports_only_the_standard_library_and_itself() -> None:
    for module, names in _imports_under("domain").items():
        foreign = {
            n
            for n in names
            if n.split(".")[0] not in sys.stdlib_module_names and not n.startswith("perfmon.domain")
        }
        assert not foreign, f"{module} imports {foreign}"
        assert "os" not in names, f"{module} must not read the environment or the filesystem"
