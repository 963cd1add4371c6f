"""``python -m tenantry.lab``: up is idempotent, status hides passwords, down leaves nothing running."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support import unmount_under

from tenantry.lab.cli import main
from tenantry.lab.simulator import is_simulator

pytestmark = pytest.mark.integration


def lab(state_dir: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["--state-dir", str(state_dir), *args]) == 0
    return capsys.readouterr().out


def test_up_status_esx_and_down(lab_binary: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    try:
        out = lab(state, "up", "--port", "0", capsys=capsys)
        assert out.startswith("started vcenter")
        vcenter_file = state / "vcenter.json"
        assert stat.S_IMODE(vcenter_file.stat().st_mode) == 0o600
        vcenter = json.loads(vcenter_file.read_text())
        assert set(vcenter) == {"hostname", "port", "username", "password", "ca_file", "pid"}
        assert is_simulator(vcenter["pid"])

        out = lab(state, "up", "--port", "0", capsys=capsys)
        assert out.startswith("already running")
        assert json.loads(vcenter_file.read_text())["pid"] == vcenter["pid"]

        lab(state, "esx-up", "tenant-a", capsys=capsys)
        esx = json.loads((state / "esx" / "tenant-a.json").read_text())
        assert is_simulator(esx["pid"])

        out = lab(state, "status", capsys=capsys)
        assert f":{vcenter['port']}/sdk" in out and "esx/tenant-a" in out and "running" in out
        assert vcenter["password"] not in out and esx["password"] not in out

        lab(state, "esx-down", "tenant-a", capsys=capsys)
        assert not (state / "esx" / "tenant-a.json").exists()
        assert not is_simulator(esx["pid"])
    finally:
        lab(state, "down", capsys=capsys)
    assert not is_simulator(vcenter["pid"])
    assert not vcenter_file.exists()
    assert (state / "tls" / "ca.pem").exists()  # the lab CA is kept
    assert "no simulators recorded" in lab(state, "status", capsys=capsys)


def test_module_entry_point_reports_errors_cleanly(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "tenantry.lab", "--state-dir", str(tmp_path), "esx-down", "../escape"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert run.stderr.startswith("error: invalid ESX name")


def test_down_unmounts_the_tenant_filesystems_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The nfs_export role loop-mounts each lab tenant's image under exports/: down unmounts them before it
    removes exports/, and keeps exports/ (never deleting into a mounted filesystem) when one is busy."""
    state = tmp_path / "state"
    image, point = state / "exports" / "images" / "acme.img", state / "exports" / "exports" / "tenants" / "acme"
    image.parent.mkdir(parents=True)
    point.mkdir(parents=True)
    image.write_bytes(b"")
    try:
        subprocess.run(["truncate", "-s", "64M", str(image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
        subprocess.run(["mount", "-o", "loop", str(image), str(point)], check=True)
        with open(point / "vm.vmdk", "w"):  # busy
            out = lab(state, "down", capsys=capsys)
            assert f"could not unmount {point}" in out and (point / "vm.vmdk").exists()
            assert "removed run, nfs, esx, net, credentials from" in out
        out = lab(state, "down", capsys=capsys)
        assert "removed run, nfs, esx, net, exports, credentials" in out and not (state / "exports").exists()
        assert str(point) not in Path("/proc/self/mountinfo").read_text()
    finally:
        unmount_under(tmp_path)


def test_directory_user_logs_in_to_the_provider_vcenter(
    lab_binary: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make lab` gives each tenant's production account to the provider vCenter (the failover looks it up)."""
    from pyVmomi import vim
    from support import vsphere as vs

    from tenantry.lab.simulator import Endpoint

    state = tmp_path / "state"
    user = "acme-ops@vsphere.local"
    try:
        lab(state, "up", "--port", "0", capsys=capsys)
        raw = json.loads((state / "vcenter.json").read_text())
        endpoint = Endpoint(**dict(raw, ca_file=Path(raw["ca_file"])))
        secret = state / "secrets" / f"directory-{user}"
        with pytest.raises(vim.fault.InvalidLogin):
            vs.login(endpoint, user, "anything")
        assert lab(state, "directory-user", "--user", user, capsys=capsys).startswith("changed directory account")
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        password = secret.read_text().strip()
        assert password not in capsys.readouterr().out
        vs.login(endpoint, user, password).content.sessionManager.Logout()
        assert lab(state, "directory-user", "--user", user, capsys=capsys).startswith("unchanged")
        assert secret.read_text().strip() == password
        assert main(["--state-dir", str(state), "directory-user", "--user", "acme ops"]) != 0
        assert "--user 'acme ops': expected an account" in capsys.readouterr().err
    finally:
        lab(state, "down", capsys=capsys)
