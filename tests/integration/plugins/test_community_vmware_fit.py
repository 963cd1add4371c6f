"""Which community.vmware modules could configure a nested target, measured against the ESX-mode simulator.

Issue 16 ("kept collections where they do the job"): for every concern ``tenantry.msp.nested_host``
handles, run the community.vmware module that would do the same, the way the role would (through
ansible-playbook, against one nested ESXi), in four passes: check mode with diff, a real run with
diff, the same run again (idempotence) and check mode again.  The assertions are the facts
docs/vmware-modules.md rests on, so the table fails loudly when a new community.vmware changes one.

Tests named ``test_community_bug_*`` document a defect of the community module (not of ours);
``test_community_gap_*`` a missing feature; ``test_simulator_gap_*`` where the lab simulator, not
the module, is what fails.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import run_playbook

pytestmark = pytest.mark.integration

CV = Path(__file__).resolve().parents[3] / ".collections/ansible_collections/community/vmware"
HOST = "localhost.localdomain"  # the simulated ESXi's name
PASSWORD = "Tenant-Secret-7f3a"

# concern -> (module, arguments besides the connection); the order is the order a role would need.
TASKS: dict[str, tuple[str, dict[str, Any]]] = {
    "advanced_setting": (
        "community.vmware.vmware_host_config_manager",
        {"esxi_hostname": HOST, "options": {"Net.FollowHardwareMac": 1}},
    ),
    "vswitch": (
        "community.vmware.vmware_vswitch",
        {"esxi_hostname": HOST, "switch": "vSwitch1", "nics": ["vmnic1"], "mtu": 1500},
    ),
    "portgroup": (
        "community.vmware.vmware_portgroup",
        {"esxi_hostname": HOST, "switch": "vSwitch1", "portgroup": "tenant", "vlan_id": 0},
    ),
    "vmkernel": (
        "community.vmware.vmware_vmkernel",
        {
            "esxi_hostname": HOST,
            "vswitch_name": "vSwitch1",
            "portgroup_name": "tenant",
            "network": {"type": "static", "ip_address": "10.210.0.100", "subnet_mask": "255.255.255.0"},
            "mtu": 1500,
            "state": "present",
        },
    ),
    "nfs_datastore": (
        "community.vmware.vmware_host_datastore",
        {
            "esxi_hostname": HOST,
            "datastore_name": "nfs-fit",
            "datastore_type": "nfs",
            "nfs_server": "192.168.50.10",
            "nfs_path": "/exports/tenants/fit",
            "nfs_ro": False,
            "state": "present",
        },
    ),
    "role": (
        "community.vmware.vmware_local_role_manager",
        {
            "local_role_name": "tenantry-tenant",
            "local_privilege_ids": ["Datastore.Browse", "VirtualMachine.Interact.PowerOn"],
            "state": "present",
        },
    ),
    "account": (
        "community.vmware.vmware_local_user_manager",
        {
            "local_user_name": "tenant-fit",
            "local_user_password": PASSWORD,
            "local_user_description": "tenant replication account",
            "state": "present",
        },
    ),
    "permission": (
        "community.vmware.vmware_object_role_permission",
        {
            "principal": "tenant-fit",
            "role": "tenantry-tenant",
            "object_name": "nfs-fit",
            "object_type": "Datastore",
            "recursive": True,
            "state": "present",
        },
    ),
    "service": (
        "community.vmware.vmware_host_service_manager",
        {"esxi_hostname": HOST, "service_name": "TSM-SSH", "state": "stop", "service_policy": "off"},
    ),
}
PASSES = {"check": ["--check", "--diff"], "run": ["--diff"], "again": ["--diff"], "check_again": ["--check"]}


def _pass(tmp_path: Path, ep: Any, name: str, flags: list[str]) -> dict[str, dict[str, Any]]:
    """One playbook with every task (errors ignored, so each concern is judged on its own)."""
    conn = {
        "hostname": ep.hostname,
        "port": ep.port,
        "username": ep.username,
        "password": ep.password,
        "validate_certs": True,
    }
    tasks = [
        {"name": concern, module: {**conn, **args}, "ignore_errors": True} for concern, (module, args) in TASKS.items()
    ]
    path = tmp_path / f"{name}.yml"
    path.write_text(json.dumps([{"name": name, "hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    path.chmod(0o600)
    # community.vmware verifies certificates against the default store: point it at the lab CA.
    env = {"SSL_CERT_FILE": str(ep.ca_file), "REQUESTS_CA_BUNDLE": str(ep.ca_file)}
    run = run_playbook(
        path, "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable, *flags, env=env
    )
    assert len(run.results) == len(TASKS), run.stdout[-2000:] + run.stderr[-2000:]
    assert PASSWORD not in run.stdout + run.stderr  # no_log on local_user_password
    return dict(zip(TASKS, run.results, strict=True))


def _documentation(module: Path) -> str:
    """A module's DOCUMENTATION string, without importing it."""
    tree = ast.parse(module.read_text())
    return next(
        str(node.value.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and getattr(node.targets[0], "id", None) == "DOCUMENTATION"
        and isinstance(node.value, ast.Constant)
    )


def _outcome(result: dict[str, Any]) -> str:
    if result.get("failed"):
        return "failed"
    if result.get("skipped"):
        return "skipped"
    return "changed" if result.get("changed") else "ok"


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory, lab_binary: Path, lab_state_dir: Path) -> dict[str, Any]:
    """The four passes against one fresh nested ESXi, shared by the tests below (one simulator, four playbooks)."""
    from tenantry.lab import Simulator

    tmp = tmp_path_factory.mktemp("community-fit")
    with Simulator(lab_binary) as simulator:
        ep = simulator.start("esx", lab_state_dir, "esx-community-fit")
        results = {name: _pass(tmp, ep, name, flags) for name, flags in PASSES.items()}
    table = {concern: {name: _outcome(results[name][concern]) for name in PASSES} for concern in TASKS}
    failures = {
        f"{concern} ({name})": str(results[name][concern].get("msg", ""))[:200]
        for name in PASSES
        for concern in TASKS
        if results[name][concern].get("failed")
    }
    print(json.dumps({"table": table, "failures": failures}, indent=1))  # the record of what works, in the test log
    return {"results": results, "table": table}


# --- what works: the modules a role could use (check mode, real run, idempotent) ---


@pytest.mark.parametrize("concern", ["advanced_setting", "nfs_datastore", "role"])
def test_module_works_idempotently_with_check_mode(observed: dict[str, Any], concern: str) -> None:
    assert observed["table"][concern] == {
        "check": "changed",
        "run": "changed",
        "again": "ok",
        "check_again": "ok",
    }


@pytest.mark.parametrize("concern", ["portgroup", "vmkernel", "permission"])
def test_chained_module_works_but_check_mode_fails_on_a_fresh_host(observed: dict[str, Any], concern: str) -> None:
    """Idempotent once its prerequisite exists (switch, portgroup, role), but in a check run
    on a new target the prerequisite was only planned by the previous task, so the module fails: a role built
    from these modules cannot show in check mode what it would do to a new target.  nested_host plans the
    whole host in one call (its check run on a fresh host reports "changed" and changes nothing)."""
    assert observed["table"][concern] == {
        "check": "failed",
        "run": "changed",
        "again": "ok",
        "check_again": "ok",
    }
    expected = {
        "portgroup": "The vSwitch 'vSwitch1' doesn't exist",
        "vmkernel": "Portgroup 'tenant' not found on vSS 'vSwitch1'",
        "permission": "Specified role (tenantry-tenant) was not found",
    }
    assert expected[concern] in observed["results"]["check"][concern]["msg"]


def test_service_module_reads_and_keeps_ssh_off(observed: dict[str, Any]) -> None:
    # The simulated ESXi starts with TSM-SSH stopped and off, so every pass has nothing to change.
    assert observed["table"]["service"] == {"check": "ok", "run": "ok", "again": "ok", "check_again": "ok"}
    status = observed["results"]["run"]["service"]["host_service_status"][HOST]
    assert (status["actual_service_state"], status["actual_service_policy"]) == ("stopped", "off")


# --- what does not ---


def test_community_gap_no_diff_from_any_module(observed: dict[str, Any]) -> None:
    """None of the nine modules returns a diff under --diff; nested_host shows before/after of every part."""
    for name in ("check", "run", "again"):
        with_diff = [concern for concern, result in observed["results"][name].items() if "diff" in result]
        assert with_diff == [], name


def test_community_bug_local_user_manager_not_idempotent_and_no_check_mode(observed: dict[str, Any]) -> None:
    """vmware_local_user_manager updates the account on every run (always "changed"; upstream
    ansible-collections/community.vmware#714, closed, still so) and declares no check mode, so
    --check skips it and cannot tell whether the account exists."""
    table = observed["table"]["account"]
    assert table == {"check": "skipped", "run": "changed", "again": "changed", "check_again": "skipped"}
    assert "does not support check mode" in observed["results"]["check"]["account"]["msg"]


def test_community_gap_vmkernel_has_no_mac_option() -> None:
    """The tenant switch port is locked to vNIC 1's static MAC; vmware_vmkernel cannot give the NIC that MAC."""
    doc = yaml.safe_load(_documentation(CV / "plugins/modules/vmware_vmkernel.py"))
    assert "ip_address" in doc["options"]["network"]["suboptions"]  # the right place to look
    assert not [name for name in doc["options"] if "mac" in name]
    assert not [name for name in doc["options"]["network"]["suboptions"] if "mac" in name]


def test_community_gap_no_module_for_static_routes() -> None:
    """Routes to the provider through the tenant gateway: no community.vmware module manages an ESXi's IP routes."""
    modules = {p.stem for p in (CV / "plugins/modules").glob("*.py")}
    assert not [m for m in modules if "route" in m]


def test_simulator_gap_vswitch_second_run_fails(observed: dict[str, Any]) -> None:
    """vmware_vswitch creates the switch, then fails on its next run: the simulator's new vSwitch has no
    spec.policy (a real ESXi fills it in), and the module reads spec.policy.nicTeaming.  A lab limitation,
    not a community bug; nested_host does not read the policy."""
    table = observed["table"]["vswitch"]
    assert table == {"check": "changed", "run": "changed", "again": "failed", "check_again": "failed"}
    assert "nicTeaming" in observed["results"]["again"]["vswitch"]["msg"]


def test_community_gap_default_gateway_has_no_interface() -> None:
    """nested_host sets the default gateway with the VMkernel NIC it leaves by (gatewayDevice, the tenant NIC);
    vmware_host_tcpip_stacks sets the default stack's gateway address only, and vmware_vmkernel's
    network.default_gateway is a per-NIC override, not the host's default route."""
    doc = yaml.safe_load(_documentation(CV / "plugins/modules/vmware_host_tcpip_stacks.py"))
    default_stack = doc["options"]["default"]["suboptions"]
    assert "gateway" in default_stack
    assert not [name for name in default_stack if "device" in name or "interface" in name]
