"""The wheel `pip` builds ships every data file perfmon reads at run time, and setuptools has nothing to warn.

The dashboard (static/, the vendored uPlot), the OpenAPI document and the Alembic script template are not
Python modules: a wheel that left them out would install cleanly and then fail at the first request or
`perfmon init-db`. The build runs on a copy of the packaging inputs, so the shared checkout gets no build/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[2]
PACKAGING_INPUTS = ("setup.cfg", "pyproject.toml", "README.md")
# What the server loads by path rather than by import; named so that an empty source tree cannot pass.
NAMED_DATA_FILES = {
    "perfmon/entrypoints/http/openapi.json",
    "perfmon/entrypoints/http/static/index.html",
    "perfmon/entrypoints/http/static/dashboard.js",
    "perfmon/entrypoints/http/static/dashboard.css",
    "perfmon/entrypoints/http/static/vendor/uplot/uPlot.iife.min.js",
    "perfmon/entrypoints/http/static/vendor/uplot/uPlot.min.css",
    "perfmon/entrypoints/http/static/vendor/uplot/LICENSE",
    "perfmon/adapters/postgres/migrations/script.py.mako",
}
# setuptools' words when data sits in a folder that is not a declared package (it will stop shipping it).
SETUPTOOLS_COMPLAINTS = ("would be ignored", "as data is deprecated", "is absent from the `packages`")


def _source_data_files(root: Path) -> set[str]:
    """Every file under perfmon/ that is not Python source or bytecode, relative to root, / separated."""
    return {
        path.relative_to(root).as_posix()
        for path in (root / "perfmon").rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(the wheel, pip's verbose output) of `pip wheel --no-deps` over a copy of the project."""
    source = tmp_path_factory.mktemp("source")
    shutil.copytree(PROJECT / "perfmon", source / "perfmon", ignore=shutil.ignore_patterns("__pycache__"))
    for name in PACKAGING_INPUTS:
        shutil.copy2(PROJECT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    (wheel,) = out.glob("perfmon-*.whl")
    return wheel, build.stdout + build.stderr


def test_the_wheel_ships_every_data_file_of_the_source_tree(built_wheel: tuple[Path, str]) -> None:
    wheel, _ = built_wheel
    shipped = set(zipfile.ZipFile(wheel).namelist())
    source_data = _source_data_files(PROJECT)
    assert source_data >= NAMED_DATA_FILES, "the test's list names files the source no longer has"
    assert source_data - shipped == set(), "data files left out of the wheel"


def test_building_the_wheel_draws_no_setuptools_warning_about_package_data(
    built_wheel: tuple[Path, str],
) -> None:
    _, output = built_wheel
    complaints = [line for line in output.splitlines() if any(w in line for w in SETUPTOOLS_COMPLAINTS)]
    assert complaints == []
