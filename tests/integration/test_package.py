"""The package builds from what the Dockerfile copies (pyproject.toml, README.md, provider/) and
installs the way it installs it (`pip install --prefix`), and the installed `signet` runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_package_runs_outside_the_checkout(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):  # as the Dockerfile's COPY lines
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "provider", source / "provider", ignore=shutil.ignore_patterns("*.pyc"))
    prefix = tmp_path / "install"
    # --ignore-installed: without it pip "upgrades" this venv's editable signet, uninstalling it
    # from the venv that every later test starts the provider from. (The image's build stage has
    # no signet installed, so there the flag changes nothing.)
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "--ignore-installed"]
    build = subprocess.run(
        [*install, "--prefix", str(prefix), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr
    assert "BuildBackendWarning" not in build.stderr
    site = sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)})
    installed = Path(site) / "signet"
    assert (installed / "cli.py").is_file()
    # Only the installed copy may be importable: no checkout on the path, this venv for the
    # dependencies (the Dockerfile's first stage installs those next to it).
    env = {**os.environ, "PYTHONPATH": site, "PYTHONSAFEPATH": "1"}
    assert _where_signet_imports_from(tmp_path, env).is_relative_to(installed)
    script = subprocess.run(
        [str(prefix / "bin" / "signet"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    assert script.returncode == 0, script.stderr
    assert "serve" in script.stdout
    # and this venv still has its own (editable) signet, which later tests start the provider from
    here = _where_signet_imports_from(tmp_path, {**os.environ, "PYTHONSAFEPATH": "1"})
    assert here.is_relative_to(ROOT / "provider")


def _where_signet_imports_from(cwd: Path, env: dict[str, str]) -> Path:
    where = subprocess.run(
        [sys.executable, "-c", "import signet; print(signet.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
        env=env,
    )
    assert where.returncode == 0, where.stderr
    return Path(where.stdout.strip())
