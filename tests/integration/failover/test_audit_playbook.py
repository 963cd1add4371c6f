"""playbooks/audit.yml against the simulator: drift is found, posted to a real Director as alarms, and cleared
when it is gone.  The DHCP server is this machine (check mode: its configuration is never written)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import failoverlab as fl
import pytest
from pyVmomi import vim
from support import REPO, run_playbook, unmount_under

sys.path.insert(0, str(REPO / "tests" / "integration" / "services"))
from services_harness import DirectorProc

pytestmark = pytest.mark.integration


def audit(inventory: Path, tmp_path: Path, director: DirectorProc, *extra: str) -> dict[str, Any]:
    run = run_playbook(
        REPO / "playbooks" / "audit.yml",
        "-i",
        str(inventory),
        "-e",
        f"audit_report_dir={tmp_path}/audit",
        "-e",
        f"failover_journal_dir={tmp_path}/journal",
        *extra,
        env={
            "TENANTRY_DIRECTOR_URL": director.url,
            "TENANTRY_DIRECTOR_TOKEN": director.token,
            "TENANTRY_DIRECTOR_CA_FILE": str(director.state / "ca.crt"),
        },
        # A guard against a hang, not a speed test: an audit takes 20-30 s here alone, and over 300 s was
        # seen once in CI with every suite running at once on two cores.
        timeout=900,
    )
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
    found = next(r["tenantry_audit"] for r in reversed(run.results) if "tenantry_audit" in r)
    return dict(found)


def registered_with_mac(vc_si: Any, name: str, mac: str, address_type: str = "static") -> Any:
    """A VM carrying a MAC vCenter would not set (a static one outside its range, or another VM's
    generated one): registered from a .vmx written by hand on a production datastore (vCenter reads it
    as it is; a power-on or a reconfiguration would refuse a static MAC outside the range)."""
    content = vc_si.RetrieveContent()
    dc = content.searchIndex.FindByInventoryPath("provider")
    cluster = content.searchIndex.FindByInventoryPath("provider/host/production")
    datastore = next(d for d in cluster.datastore if d.name == "prod-ds-01")
    folder = Path(datastore.summary.url) / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.vmx").write_text(
        "\n".join(
            [
                '.encoding = "UTF-8"',
                'config.version = "8"',
                'virtualHW.version = "19"',
                f'displayName = "{name}"',
                'guestOS = "otherGuest64"',
                'memSize = "16"',
                'numvcpus = "1"',
                'ethernet0.present = "TRUE"',
                'ethernet0.virtualDev = "vmxnet3"',
                'ethernet0.networkName = "VM Network"',
                f'ethernet0.addressType = "{address_type}"',
                f'ethernet0.{"address" if address_type == "static" else "generatedAddress"} = "{mac}"',
                "",
            ]
        )
    )
    task = dc.vmFolder.RegisterVM_Task(
        path=f"[prod-ds-01] {name}/{name}.vmx", name=name, asTemplate=False, pool=cluster.resourcePool
    )
    return fl.wait(vc_si, [task])[0]


def mine(findings: list[dict[str, Any]], tenants: set[str]) -> list[tuple[str, str | None]]:
    """This test's findings (the session's vCenter also holds other tests' tenants, which the audit sees)."""
    return sorted(
        (f["check"], f["tenant"])
        for f in findings
        if f["tenant"] in tenants or f["check"] == "dhcp_reservations" or "adp-" in f["message"]
    )


def test_audit_finds_drift_posts_it_and_clears_it(lab_tenant: Any, tmp_path: Path) -> None:
    p = lab_tenant("adp", vms=2)
    q = lab_tenant("adq", vms=1)
    inventory = fl.write_inventory(tmp_path / "inventory", p.vcenter, [(p.data, p.target), (q.data, q.target)])
    (inventory / "group_vars" / "nested_targets.yml").write_text(
        json.dumps({"nested_esxi_target_account_password": "Audit-Tenant-Secret-1"})
    )
    # This machine as the DHCP server; its configuration file does not exist yet: drift.
    (inventory / "hosts.yml").write_text(
        json.dumps(
            {
                "all": {
                    "children": {
                        "dhcp_servers": {
                            "hosts": {
                                "lab-dhcp": {
                                    "ansible_connection": "local",
                                    "ansible_python_interpreter": sys.executable,
                                    "dhcp_reservations_subnet": "172.16.0.0/12",
                                    "dhcp_reservations_config_path": str(tmp_path / "dnsmasq.conf"),
                                    "dhcp_reservations_install": False,
                                    "dhcp_reservations_manage_service": False,
                                }
                            }
                        }
                    }
                }
            }
        )
    )
    (tmp_path / "director").mkdir()
    director = DirectorProc(tmp_path / "director").start()
    try:
        director.create_tenant(p.name)
        ours = {p.name, q.name}
        clean = audit(inventory, tmp_path, director)
        # The targets were built by hand, never stamped on the provider vCenter: one finding per target.
        unstamped = [("nested_target", p.name), ("nested_target", q.name)]
        assert mine(clean["findings"], ours) == sorted([("dhcp_reservations", None), *unstamped])
        assert all(
            "not on the provider vCenter (never stamped" in f["message"]
            for f in clean["findings"]
            if f["check"] == "nested_target" and f["tenant"] in ours
        ), clean["findings"]
        assert not (tmp_path / "dnsmasq.conf").exists()  # check mode wrote nothing

        # Drift: p's NFS datastore left mounted in production, one of its replicas registered there too,
        # a rogue VM with a static MAC outside the manual range, another sharing a replica's MAC.
        host = fl.content(p.vc_si).searchIndex.FindByInventoryPath("provider/host/production").host[0]
        host.configManager.datastoreSystem.CreateNasDatastore(fl.nas_spec(p.spec))
        vmx = fl.vms_of(p.target_si)[p.vms[0]].config.files.vmPathName
        dc = fl.content(p.vc_si).searchIndex.FindByInventoryPath("provider")
        cluster = fl.content(p.vc_si).searchIndex.FindByInventoryPath("provider/host/production")
        twin = fl.wait(
            p.vc_si,
            [
                dc.vmFolder.RegisterVM_Task(
                    path=vmx, name=p.vms[0], asTemplate=False, pool=cluster.resourcePool, host=host
                )
            ],
        )[0]
        replica_mac = next(
            d.macAddress
            for d in fl.vms_of(p.target_si)[p.vms[1]].config.hardware.device
            if isinstance(d, vim.vm.device.VirtualEthernetCard)
        )
        rogue = registered_with_mac(p.vc_si, "adp-rogue", "00:50:56:99:00:01")
        copycat = registered_with_mac(p.vc_si, "adp-copycat", replica_mac, "generated")

        drift = audit(inventory, tmp_path, director)
        checks = set(mine(drift["findings"], ours))
        assert {
            ("vmx_registered_twice", p.name),
            ("nfs_still_mounted", p.name),
            ("mac_outside_manual_range", None),
            ("mac_shared", p.name),
            ("dhcp_reservations", None),
        } <= checks, drift["findings"]
        assert not any(f["tenant"] == q.name and f["check"] != "nested_target" for f in drift["findings"])
        reports = sorted((tmp_path / "audit").glob("*.json"))
        assert len(reports) == 2 and json.loads(reports[-1].read_text())["findings"] == drift["findings"]
        assert "finding(s)" in sorted((tmp_path / "audit").glob("*.txt"))[-1].read_text()
        alarms = {a["key"]: a for a in director.api("GET", "/api/v1/alarms") if a["kind"] == "drift"}
        assert len(alarms) == len({f["key"] for f in drift["findings"]})
        assert alarms[f"drift:nfs:{p.name}"]["tenant"] == p.name

        # Repaired: the alarms of what is gone clear.
        for vm in (twin, rogue, copycat):
            vm.UnregisterVM()
        host.configManager.datastoreSystem.RemoveDatastore(
            fl.content(p.vc_si).searchIndex.FindChild(dc.datastoreFolder, p.spec["nfs"]["datastore"])
        )
        repaired = audit(inventory, tmp_path, director)
        assert mine(repaired["findings"], ours) == sorted([("dhcp_reservations", None), *unstamped])
        open_drift = {a["key"] for a in director.api("GET", "/api/v1/alarms") if a["kind"] == "drift"}
        assert "drift:dhcp:lab-dhcp" in open_drift and f"drift:nfs:{p.name}" not in open_drift
        assert open_drift == {"drift:" + f["key"] for f in repaired["findings"]}  # the rest were cleared
    finally:
        director.stop()


def nfs_server(tmp_path: Path) -> dict[str, Any]:
    """This machine as the NFS server, into a scratch root (no NFS server runs here: no install, no exportfs);
    each tenant's export is a real loop-mounted filesystem of its size_gb (the test unmounts it)."""
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "nfs_export_root": str(tmp_path / "srv"),
        "nfs_export_file": str(tmp_path / "exports.d" / "tenantry.exports"),
        "nfs_export_image_dir": str(tmp_path / "images"),
        "nfs_export_fstab": str(tmp_path / "fstab"),
        "nfs_export_install": False,
        "nfs_export_reload": False,
    }


@pytest.fixture
def unmounted(tmp_path: Path) -> Iterator[Path]:
    try:
        yield tmp_path
    finally:
        unmount_under(tmp_path)


def test_audit_checks_stamped_targets_and_exports(lab_tenant: Any, unmounted: Path) -> None:
    """A target stamped by onboard_tenant.yml audits clean; drift on its nested host, on the provider vCenter,
    in the exports file and on the tenant's NFS filesystem (nearly full) becomes findings and alarms;
    onboard_tenant.yml (what the messages say) and freeing space clear them."""
    tmp_path = unmounted
    t = lab_tenant("ads", vms=0, build=False)
    inventory = fl.write_inventory(tmp_path / "inventory", t.vcenter, [(t.data, t.target)])
    (inventory / "group_vars" / "nested_targets.yml").write_text(
        json.dumps({"nested_esxi_target_account_password": "Audit-Tenant-Secret-1"})
    )
    (inventory / "hosts.yml").write_text(
        json.dumps({"all": {"children": {"nfs_servers": {"hosts": {"lab-nfs": nfs_server(tmp_path)}}}}})
    )
    target = f"{t.name}-target-01"
    onboard = [str(REPO / "playbooks" / "onboard_tenant.yml"), "-i", str(inventory), "-e", f"tenant={t.name}"]
    stamped = run_playbook(Path(onboard[0]), *onboard[1:])
    assert stamped.rc == 0, stamped.stdout[-3000:] + stamped.stderr[-2000:]
    exports = tmp_path / "exports.d" / "tenantry.exports"
    assert f"{tmp_path}/srv/exports/tenants/{t.name} " in exports.read_text()
    export_path = f"{tmp_path}/srv/exports/tenants/{t.name}"
    assert f"{tmp_path}/images/{t.name}.img {export_path} ext4" in (tmp_path / "fstab").read_text()

    (tmp_path / "director").mkdir()
    director = DirectorProc(tmp_path / "director").start()
    try:
        director.create_tenant(t.name)
        clean = audit(inventory, tmp_path, director)
        assert [f for f in clean["findings"] if f["tenant"] == t.name] == [], clean["findings"]
        assert not any(f["check"] == "nfs_export" for f in clean["findings"]), clean["findings"]

        # Drift, made as the administrator: on the nested host SSH on, the tenant account's permission on its
        # datastore gone, the tenant NFS datastore unmounted; on the provider vCenter the target powered off;
        # on the NFS server the tenant's export opened to everyone.
        content = t.target_si.RetrieveContent()
        _dc, host, _pool, _folder = fl.esx_parts(t.target_si)
        services = host.configManager.serviceSystem
        services.StartService(id="TSM-SSH")
        services.UpdateServicePolicy(id="TSM-SSH", policy="on")
        datastore = next(d for d in host.datastore if d.name == t.spec["nfs"]["datastore"])
        content.authorizationManager.RemoveEntityPermission(entity=datastore, user=f"tenant-{t.name}", isGroup=False)
        host.configManager.datastoreSystem.RemoveDatastore(datastore)
        vm = fl.vms_of(t.vc_si)[target]
        fl.wait(t.vc_si, [vm.PowerOffVM_Task()])
        exports.write_text(exports.read_text().replace("(rw,", "(insecure,rw,") + "/srv/stray *(rw)\n")
        # ... and the tenant's NFS filesystem (its size_gb, 1024 GB sparse) filled over 90 % (allocated, not written),
        # while its tenant file now asks for 1100 GB.
        subprocess.run(["fallocate", "-l", str(950 * 1024**3), f"{export_path}/fill"], check=True)
        tenant_file = inventory / "tenants" / f"{t.name}.yml"
        tenant_file.write_text(json.dumps({**t.data, "nfs": {**t.data["nfs"], "size_gb": 1100}}))

        drift = audit(inventory, tmp_path, director)
        found = {(f["check"], f["subject"]): f for f in drift["findings"]}
        assert sorted(f["check"] for f in drift["findings"] if f["subject"].startswith((target, "lab-nfs"))) == [
            "nested_host",
            "nested_target",
            "nfs_export",
            "nfs_export",
            "nfs_export",
        ]
        host_msg = found[("nested_host", target)]["message"]
        assert found[("nested_host", target)]["tenant"] == t.name
        assert "nfs: missing" in host_msg and "services: TSM-SSH" in host_msg, host_msg
        assert "permissions: missing" in host_msg and f"onboard_tenant.yml -e tenant={t.name}" in host_msg, host_msg
        assert "power_state: poweredoff -> poweredon" in found[("nested_target", target)]["message"], found
        nfs_msg = found[("nfs_export", "lab-nfs")]["message"]
        assert "1 export line(s) to restore" in nfs_msg and "/srv/stray *(rw)" in nfs_msg, nfs_msg
        tenant_findings = {f["key"]: f for f in drift["findings"] if f["subject"].startswith("lab-nfs:")}
        full = tenant_findings[f"nfs-full:lab-nfs:{t.name}"]
        assert full["tenant"] == t.name and full["subject"] == f"lab-nfs:/exports/tenants/{t.name}", full
        assert f"of tenant {t.name} on lab-nfs is 9" in full["message"] and "raise nfs.size_gb" in full["message"]
        size = tenant_findings[f"nfs-size:lab-nfs:{t.name}"]["message"]
        assert "is 1024 GB, its tenant file says 1100 (nfs.size_gb); run playbooks/onboard_tenant.yml" in size, size
        alarms = {a["key"]: a for a in director.api("GET", "/api/v1/alarms") if a["kind"] == "drift"}
        for key in (
            f"drift:nested-host:{target}",
            f"drift:nested-target:{target}",
            "drift:nfs-export:lab-nfs",
            f"drift:nfs-full:lab-nfs:{t.name}",
            f"drift:nfs-size:lab-nfs:{t.name}",
        ):
            assert key in alarms, sorted(alarms)
        assert alarms[f"drift:nested-host:{target}"]["tenant"] == t.name
        assert "Audit-Tenant-Secret-1" not in json.dumps(drift) + json.dumps(alarms)

        # Repaired by what the findings say to run, space freed and the tenant file's size back (growth is proven
        # in tests/integration/roles/test_nfs_export.py): the alarms clear.
        Path(f"{export_path}/fill").unlink()
        tenant_file.write_text(json.dumps(t.data))
        fixed = run_playbook(Path(onboard[0]), *onboard[1:])
        assert fixed.rc == 0, fixed.stdout[-3000:] + fixed.stderr[-2000:]
        repaired = audit(inventory, tmp_path, director)
        assert [f for f in repaired["findings"] if f["tenant"] == t.name] == [], repaired["findings"]
        assert not any(f["check"] == "nfs_export" for f in repaired["findings"]), repaired["findings"]
        open_drift = {a["key"] for a in director.api("GET", "/api/v1/alarms") if a["kind"] == "drift"}
        assert not {k for k in open_drift if target in k or "nfs-" in k}, open_drift

        # What cannot be checked (here: the role refuses its input) is a finding, not a silent pass.
        unchecked = audit(inventory, tmp_path, director, "-e", "nested_esxi_target_account_password=")
        mine_now = [f for f in unchecked["findings"] if f["tenant"] == t.name]
        assert [(f["check"], f["key"]) for f in mine_now] == [("nested_target", f"nested-target-unchecked:{target}")]
        assert "could not be checked" in mine_now[0]["message"] and "account_password" in mine_now[0]["message"]
    finally:
        director.stop()
