"""tenantry.msp.vsphere_info against the real govmomi simulator, run through ansible-playbook."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim
from support import run_module

pytestmark = pytest.mark.integration


def conn(vcenter: Any, **over: Any) -> dict[str, Any]:
    args = {
        "hostname": vcenter.hostname,
        "port": vcenter.port,
        "username": vcenter.username,
        "password": vcenter.password,
        "ca_file": str(vcenter.ca_file),
    }
    args.update(over)
    return args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_reads_the_provider_site(tmp_path: Path, vcenter: Any) -> None:
    run = run_module(tmp_path, "tenantry.msp.vsphere_info", conn(vcenter))
    res = run.result
    assert run.rc == 0, run.stdout[-2000:]
    assert res["changed"] is False
    clusters = {c["name"]: c for c in res["clusters"]}
    assert clusters["production"]["hosts"] == [f"esx-prod-0{i}.lab.local" for i in (1, 2, 3)]
    assert {"prod-ds-01", "prod-ds-02"} <= {d["name"] for d in res["datastores"]}
    shared = next(d for d in res["datastores"] if d["name"] == "prod-ds-01")
    assert len(shared["hosts"]) == 3 and shared["capacity"] > 0
    mgmt = next(p for p in res["portgroups"] if p["name"] == "management")
    assert mgmt["type"] == "standard" and len(mgmt["hosts"]) == 3
    template = next(v for v in res["vms"] if v["name"] == "nested-esxi-template")
    assert template["template"] is True
    assert template["nics"] and template["nics"][0]["network"] == "management"
    assert template["macs"] == [n["mac"] for n in template["nics"]]
    # no_log: the password appears nowhere in what ansible printed.
    assert vcenter.password not in run.stdout + run.stderr


def test_check_mode_and_gather_subset(tmp_path: Path, vcenter: Any) -> None:
    run = run_module(tmp_path, "tenantry.msp.vsphere_info", conn(vcenter, gather=["hosts"]), check=True)
    assert run.rc == 0
    assert set(run.result) & {"clusters", "datastores", "portgroups", "vms"} == set()
    assert len(run.result["hosts"]) == 3


@pytest.fixture
def target_vm(vsphere_si: Any) -> Any:
    """A VM with a static (manual) MAC in the replication-targets folder, removed afterwards."""
    content = vsphere_si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.Folder, vim.ResourcePool], True)
    folder = next(o for o in view.view if isinstance(o, vim.Folder) and o.name == "replication-targets")
    pool = next(o for o in view.view if isinstance(o, vim.ResourcePool) and o.name == "replication-targets")
    view.Destroy()
    nic = vim.vm.device.VirtualDeviceSpec(
        operation="add",
        device=vim.vm.device.VirtualVmxnet3(
            addressType="manual",
            macAddress="00:50:56:00:12:34",
            backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="management"),
        ),
    )
    spec = vim.vm.ConfigSpec(
        name="acme-target-01",
        guestId="vmkernel7Guest",
        files=vim.vm.FileInfo(vmPathName="[prod-ds-01]"),
        deviceChange=[nic],
    )
    task = folder.CreateVM_Task(config=spec, pool=pool)
    WaitForTask(task)
    vm = task.info.result
    yield vm
    WaitForTask(vm.Destroy_Task())


def test_folder_filter_returns_only_that_folder(tmp_path: Path, vcenter: Any, target_vm: Any) -> None:
    run = run_module(tmp_path, "tenantry.msp.vsphere_info", conn(vcenter, gather=["vms"], folder="replication-targets"))
    assert run.rc == 0, run.result
    vms = run.result["vms"]
    # The session's vCenter also holds other tests' targets in this folder or below it (the audit test stamps
    # one into a tenant's sub-folder): every VM returned is in the folder or below, ours among them, and none
    # from the other folders (the template sits in /provider/vm).
    top = "/provider/vm/replication-targets"
    assert all(v["folder"] == top or v["folder"].startswith(top + "/") for v in vms), [v["folder"] for v in vms]
    assert "nested-esxi-template" not in {v["name"] for v in vms}
    ours = next(v for v in vms if v["name"] == "acme-target-01")
    assert ours["macs"] == ["00:50:56:00:12:34"]
    assert ours["nics"][0]["address_type"] == "manual"
    # The same folder given as a full path.
    full = run_module(
        tmp_path, "tenantry.msp.vsphere_info", conn(vcenter, gather=["vms"], folder="/provider/vm/replication-targets")
    )
    assert sorted(v["name"] for v in full.result["vms"]) == sorted(v["name"] for v in vms)


def test_unknown_folder_names_it_and_lists_folders(tmp_path: Path, vcenter: Any) -> None:
    res = run_module(tmp_path, "tenantry.msp.vsphere_info", conn(vcenter, folder="no-such-folder")).result
    assert res["failed"] is True
    assert "'no-such-folder' not found" in res["msg"]
    assert "/provider/vm/replication-targets" in res["msg"]


def test_bad_password_fails_cleanly(tmp_path: Path, vcenter: Any) -> None:
    res = run_module(tmp_path, "tenantry.msp.vsphere_info", conn(vcenter, password="wrong-password")).result
    assert res["failed"] is True
    assert "refused the login for user" in res["msg"]
    assert "Traceback" not in str(res)


def test_unreachable_host_fails_cleanly(tmp_path: Path, vcenter: Any) -> None:
    port = free_port()
    res = run_module(tmp_path, "tenantry.msp.vsphere_info", conn(vcenter, port=port, timeout=5)).result
    assert res["failed"] is True
    assert f"cannot reach vCenter at 127.0.0.1:{port}" in res["msg"]
    assert "Traceback" not in str(res)


def test_untrusted_certificate_is_refused(tmp_path: Path, vcenter: Any) -> None:
    args = conn(vcenter)
    del args["ca_file"]
    res = run_module(tmp_path, "tenantry.msp.vsphere_info", args).result
    assert res["failed"] is True
    assert "could not be verified" in res["msg"] and "ca_file" in res["msg"]


def test_wrong_option_is_named(tmp_path: Path, vcenter: Any) -> None:
    res = run_module(tmp_path, "tenantry.msp.vsphere_info", conn(vcenter, colour="blue")).result
    assert res["failed"] is True
    assert "colour" in res["msg"] and "Unsupported parameters" in res["msg"]
    bad = run_module(tmp_path, "tenantry.msp.vsphere_info", conn(vcenter, gather=["vms", "switches"])).result
    assert bad["failed"] is True and "gather" in bad["msg"] and "switches" in bad["msg"]


def test_connection_from_environment(tmp_path: Path, vcenter: Any) -> None:
    env = {
        "VMWARE_HOST": vcenter.hostname,
        "VMWARE_PORT": str(vcenter.port),
        "VMWARE_USER": vcenter.username,
        "VMWARE_PASSWORD": vcenter.password,
        "VMWARE_CA_FILE": str(vcenter.ca_file),
    }
    run = run_module(tmp_path, "tenantry.msp.vsphere_info", {"gather": ["clusters"]}, env=env)
    assert run.rc == 0, run.result
    assert [c["name"] for c in run.result["clusters"]] == ["production"]
