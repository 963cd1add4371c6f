"""The Director's jobs virtualenv as roles/director/tasks/jobs.yml builds it: the wheelhouse (pip download
of director_jobs_packages, binary wheels for the host's Python and platform) installed without a package
index into a fresh virtualenv, network_cli's SSH library (ansible-pylibssh) importing there; and this
collection with the collections it depends on, packed from the controller's copies by the role's
build-collection.py and installed offline, so that a job reaches a Cisco IOS switch with nothing else.

Needs PyPI, as the role's own wheelhouse build on the controller does.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import REPO

BUILD = REPO / "roles" / "director" / "files" / "build-collection.py"

pytestmark = pytest.mark.integration

PACKAGES = yaml.safe_load((REPO / "roles" / "director" / "defaults" / "main.yml").read_text())["director_jobs_packages"]
MANYLINUX = yaml.safe_load((REPO / "roles" / "director" / "vars" / "main.yml").read_text())["__director_manylinux"]


def run(*cmd: str, **kwargs: object) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{cmd}: {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return str(proc.stdout)


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

    # The collections, as the role builds them on the controller (twice: the second build changes nothing).
    galaxy = str(Path(sys.executable).parent / "ansible-galaxy")
    built = run(sys.executable, str(BUILD), galaxy, str(REPO), str(wheels), str(REPO / ".collections"))
    tarballs = [line.split(" ", 1)[1] for line in built.splitlines()]
    names = [Path(t).name.rsplit("-", 1)[0] for t in tarballs]
    assert names[0] == "tenantry-msp" and {"cisco-ios", "ansible-netcommon", "ansible-utils"} <= set(names), names
    again = run(sys.executable, str(BUILD), galaxy, str(REPO), str(wheels), str(REPO / ".collections"))
    assert [line.split(" ", 1)[0] for line in again.splitlines()] == ["unchanged"] * len(tarballs)
    collections = venv / "collections"
    run(str(venv / "bin" / "ansible-galaxy"), "collection", "install", "--force", "--no-deps", "--offline", "-p",
        str(collections), *tarballs)  # fmt: skip

    # A job's view: only the virtualenv and its collections (no ansible.cfg, no controller collections).
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "PYTHON"))}
    env.update(ANSIBLE_CONFIG=str(cfg), ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1")
    inventory = tmp_path / "hosts.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"sw1": {
        "ansible_host": "127.0.0.1", "ansible_port": 9, "ansible_user": "nobody", "ansible_password": "x",
        "ansible_connection": "ansible.netcommon.network_cli", "ansible_network_os": "cisco.ios.ios",
        "ansible_command_timeout": 5, "ansible_connect_timeout": 5}}}}))  # fmt: skip
    play = tmp_path / "play.yml"
    binding = {"tenant": "acme", "port": "Gi1/0/10", "mac": "00:50:56:00:65:03", "ip": "10.210.0.11",
               "network": "10.210.0.0/24", "vlan": 210}  # fmt: skip
    role_vars = {"switch_arp_lock_backend": "ios", "switch_arp_lock_uplinks": ["Gi1/0/48"],
                 "switch_arp_lock_bindings": [binding]}  # fmt: skip
    play.write_text(json.dumps([{"hosts": "sw1", "gather_facts": False,
                                 "roles": [{"role": "tenantry.msp.switch_arp_lock", "vars": role_vars}]}]))  # fmt: skip
    proc = subprocess.run([str(venv / "bin" / "ansible-playbook"), "-i", str(inventory), str(play)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    # No IOS switch runs here: the module got as far as network_cli's connection (cisco.ios's cliconf and
    # terminal plugins, ansible.netcommon's connection, pylibssh all loaded from the virtualenv).
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    failed = proc.stdout.split("TASK [tenantry.msp.switch_arp_lock : Lock the tenant ports on the switch]")[-1]
    assert "fatal: [sw1]" in failed and "Talking to the switch failed (get_config)" in failed, proc.stdout[-3000:]
