"""The collection as users get it: built tarball installs, imports, documents; EE definition builds a context."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from support import REPO, ansible_env

BIN = Path(sys.executable).parent
VERSION = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]


def run(*cmd: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env or ansible_env(), cwd=cwd, timeout=300)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run(str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(REPO))
    path = out / f"tenantry-msp-{VERSION}.tar.gz"
    assert path.is_file()
    return path


def test_tarball_ships_content_not_dev_state(tarball: Path) -> None:
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "plugins/modules/vsphere_info.py" in names
    assert "plugins/inventory/tenants.py" in names
    assert "src/tenantry/director/__main__.py" in names  # the roles install the services from here
    assert "meta/execution-environment.yml" in names
    for private in (".venv", ".lab", ".collections", ".git", ".ansible", "tests", "molecule"):
        assert not any(n == private or n.startswith(private + "/") for n in names), private


def test_installed_tarball_imports_and_documents(tarball: Path, tmp_path: Path) -> None:
    dest = tmp_path / "collections"
    run(str(BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "--force", "-p", str(dest), str(tarball))
    env = ansible_env(ANSIBLE_COLLECTIONS_PATH=str(dest))
    doc = run(str(BIN / "ansible-doc"), "-t", "module", "tenantry.msp.vsphere_info", env=env).stdout
    assert "folder" in doc and "VMWARE_HOST" in doc
    run(str(BIN / "ansible-doc"), "-t", "inventory", "tenantry.msp.tenants", env=env)
    code = (
        "from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere import VSphereClient;"
        "from ansible_collections.tenantry.msp.plugins.module_utils._tenant_model import load_all;"
        "print(VSphereClient.__name__, load_all.__name__)"
    )
    out = run(sys.executable, "-c", code, env=ansible_env(PYTHONPATH=str(dest)), cwd=tmp_path).stdout
    assert out.split() == ["VSphereClient", "load_all"]


def test_builder_introspect_and_create(tarball: Path, tmp_path: Path) -> None:
    dest = tmp_path / "collections"
    run(str(BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "--force", "-p", str(dest), str(tarball))
    intro = run(str(BIN / "ansible-builder"), "introspect", "--sanitize", str(dest)).stdout
    for requirement in ("pyvmomi", "netaddr", "cryptography", "requests"):
        assert requirement in intro.lower(), intro
    ee = tmp_path / "ee"
    shutil.copytree(REPO / "ee", ee)
    shutil.copy(tarball, ee)
    context = tmp_path / "context"
    run(str(BIN / "ansible-builder"), "create", "-f", str(ee / "execution-environment.yml"), "-c", str(context))
    containerfile = (context / "Containerfile").read_text()
    assert "ansible-galaxy collection install" in containerfile
    assert (context / "_build" / "collections" / tarball.name).is_file()
    assert "compileall -q /usr/share/ansible/collections/ansible_collections/tenantry" in containerfile
