"""tests/support/lab_audit.py finds what a vSphere engineer would refuse, on a simulator of its own."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tenantry.lab.simulator import Endpoint, Simulator

pytestmark = pytest.mark.integration
vim = pytest.importorskip("pyVmomi").vim
connect = pytest.importorskip("pyVim.connect")
WaitForTask = pytest.importorskip("pyVim.task").WaitForTask


def _audit_module() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "support" / "lab_audit.py"
    spec = importlib.util.spec_from_file_location("lab_audit", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lab_audit"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def site(lab_binary: Path, tmp_path: Path) -> Iterator[tuple[Path, Endpoint]]:
    state = tmp_path / "state"
    with Simulator(lab_binary) as simulator:
        endpoint = simulator.start("vcenter", state, "vcenter")
        (state / "vcenter.json").write_text(json.dumps(endpoint.to_json()))
        yield state, endpoint


def _vm(si: Any, name: str, mac: str) -> Any:
    content = si.RetrieveContent()
    dc = next(e for e in content.rootFolder.childEntity if e.name == "provider")
    cluster = next(c for c in dc.hostFolder.childEntity if c.name == "production")
    nic = vim.vm.device.VirtualDeviceSpec(
        operation="add",
        device=vim.vm.device.VirtualVmxnet3(
            key=-1,
            addressType="manual",
            macAddress=mac,
            backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="VM Network"),
        ),
    )
    spec = vim.vm.ConfigSpec(
        name=name, guestId="otherGuest64", files=vim.vm.FileInfo(vmPathName="[prod-ds-01]"), deviceChange=[nic]
    )
    task = dc.vmFolder.CreateVM_Task(config=spec, pool=cluster.resourcePool)
    WaitForTask(task)
    return task.info.result


def test_findings(site: tuple[Path, Endpoint], tmp_path: Path) -> None:
    audit = _audit_module()
    state, endpoint = site
    tenants = tmp_path / "tenants"
    tenants.mkdir()
    (tenants / "acme.yml").write_text("name: acme\nnfs: {server: 192.168.50.10, path: /exports/tenants/acme}\n")
    assert audit.audit(state, tenants) == []

    si = connect.SmartConnect(
        host=endpoint.hostname,
        port=endpoint.port,
        user=endpoint.username,
        pwd=endpoint.password,
        sslContext=endpoint.ssl_context(),
    )
    try:
        _vm(si, "copy-a", "00:50:56:00:aa:01")
        _vm(si, "copy-b", "00:50:56:00:aa:01")
        try:
            _vm(si, "copy-c", "00:0c:29:00:00:01")
            outside = True
        except vim.fault.VimFault:
            outside = False  # a simulator as strict as vCenter refuses it already
        content = si.RetrieveContent()
        host = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True).view[0]
        host_name = host.name
        host.configManager.datastoreSystem.CreateNasDatastore(
            vim.host.NasVolume.Specification(
                remoteHost="192.168.50.10",
                remotePath="/exports/tenants/acme",
                localPath="acme-nfs",
                accessMode="readWrite",
            )
        )
    finally:
        connect.Disconnect(si)

    findings = audit.audit(state, tenants)
    assert any(f.startswith("MAC 00:50:56:00:aa:01 on 2 NICs: copy-a/") for f in findings), findings
    assert any("tenant acme's NFS datastore acme-nfs left mounted on " + host_name in f for f in findings), findings
    assert any(f.startswith("manual MAC outside") and "00:0c:29:00:00:01 on copy-c" in f for f in findings) == outside
    assert audit.main(["--state-dir", str(state), "--tenants", str(tenants)]) == 1
