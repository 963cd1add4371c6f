"""The Director's jobs wheelhouse as roles/director/tasks/jobs.yml builds it (pip download of
director_jobs_packages, binary wheels for the host's Python and platform), installed without a package
index into a fresh virtualenv: network_cli's SSH library (ansible-pylibssh) imports there.

Needs PyPI, as the role's own wheelhouse build on the controller does.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import REPO

pytestmark = pytest.mark.integration

PACKAGES = yaml.safe_load((REPO / "roles" / "director" / "defaults" / "main.yml").read_text())["director_jobs_packages"]
MANYLINUX = yaml.safe_load((REPO / "roles" / "director" / "vars" / "main.yml").read_text())["__director_manylinux"]


def run(*cmd: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout


def test_jobs_venv_from_the_wheelhouse_has_network_cli_ssh(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    major, minor = sys.version_info[:2]
    version, abi = f"{major}.{minor}", f"cp{major}{minor}"
    platforms = [f"--platform={m}_{platform.machine()}" for m in MANYLINUX]
    run(sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--implementation", "cp",
        "--python-version", version, "--abi", abi, "--abi", "abi3", "--abi", "none", "--platform", "any",
        *platforms, "-d", str(wheels), *PACKAGES)  # fmt: skip
    assert list(wheels.glob("ansible_pylibssh-*.whl")), sorted(p.name for p in wheels.iterdir())

    venv = tmp_path / "jobs"
    run(sys.executable, "-m", "venv", str(venv))
    run(
        str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheels), *PACKAGES
    )
    # network_cli's ssh_type auto picks libssh when this import works (ansible.netcommon's HAS_PYLIBSSH).
    out = run(str(venv / "bin" / "python"), "-c", "from pylibsshext.session import Session; print(Session.__name__)")
    assert out.strip() == "Session"
    assert (venv / "bin" / "ansible-runner").exists() and (venv / "bin" / "ansible-playbook").exists()
