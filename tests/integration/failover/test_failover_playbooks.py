"""The playbooks end to end (real ansible-playbook, the tenants inventory plugin, the failover role).

The inventory is built like inventories/lab: one file per tenant, the provider vCenter's endpoint in
``tenantry_vcenter_*`` and each nested target's own API in ``tenantry_target_api_*``.  Both tenants'
VMs run on the same production hosts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import failoverlab as fl
import pytest
from support import REPO, PlaybookRun, run_playbook

pytestmark = pytest.mark.integration

TEXT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"}


@pytest.fixture
def site(lab_tenant: Any, tmp_path: Path) -> Any:
    # A 3 s wave delay: the run is still going when the re-run test kills the controller.
    p = lab_tenant("pbp", vms=2, destination_vlans=[3501, 3502], boot_order=[{"vms": ["{name}-vm01"], "delay": 3}])
    q = lab_tenant("pbq", vms=1)
    inventory = fl.write_inventory(tmp_path / "inventory", p.vcenter, [(p.data, p.target), (q.data, q.target)])

    def play(playbook: str, *args: str, text: bool = True) -> PlaybookRun:
        return run_playbook(
            REPO / "playbooks" / playbook,
            "-i",
            str(inventory),
            "-e",
            f"failover_journal_dir={tmp_path}/journal",
            "-e",
            f"failover_report_dir={tmp_path}/reports",
            *args,
            env=dict(TEXT if text else {}, ANSIBLE_ASYNC_DIR=str(tmp_path / "async")),
        )

    return p, q, play


def job_files(p: Any) -> list[str]:
    """What the failover jobs left in the async directory (the role removes a job's file once it has its result)."""
    folder = p.tmp.parent / "async"
    return sorted(f.name for f in folder.iterdir()) if folder.exists() else []


def test_failover_check_run_then_failback_and_a_test(site: Any) -> None:
    p, q, play = site
    checked = play("failover.yml", "-e", f"tenant={p.name}", "-e", "destination_vlan=3502", "--check")
    assert checked.rc == 0, checked.stdout[-3000:]
    assert f"failover plan for tenant {p.name}:" in checked.stdout
    assert "ok   production account: admin gets role tenantry-tenant-production on each VM" in checked.stdout
    # The collection's role: created by the first failover of the session's vCenter, then found.
    assert re.search(
        r"ok   production role: tenantry-tenant-production (will be created with |exists \()9 privileges",
        checked.stdout,
    )
    assert p.placement() == {n: {"target"} for n in p.vms}

    run = play("failover.yml", "-e", f"tenant={p.name}", "-e", "destination_vlan=3502")
    assert run.rc == 0, run.stdout[-3000:]
    # Progress: one loop item per step, as it ends; then the readable report.
    for index, step in enumerate(
        ["mount", "register", "unregister", "network", "permissions", "power_on", "relocate", "unmount"], 2
    ):
        assert f"(item={index}/9 {step}: " in run.stdout
    assert "RTO (start to all powered on):" in run.stdout
    assert p.placement() == {n: {"production"} for n in p.vms}
    assert all([n.name for n in vm.network] == [f"tenant-{p.name}-vlan3502"] for vm in p.production_vms().values())
    assert q.placement() == {n: {"target"} for n in q.vms}  # the other tenant was not touched
    assert job_files(p) == []  # the job's file went with its collected result

    back = play("failback.yml", "--limit", f"tenant_{p.name}")
    assert back.rc == 0, back.stdout[-3000:]
    assert p.placement() == {n: {"target"} for n in p.vms}

    before = fl.target_snapshot(q.target_si)
    test = play("test_failover.yml", "-e", f"tenant={q.name}")
    assert test.rc == 0, test.stdout[-3000:]
    assert sorted(q.production_vms("test-failover")) == q.vms
    again = play("test_failover.yml", "-e", f"tenant={q.name}")
    assert again.rc == 0, again.stdout[-3000:]
    said = " ".join(again.stdout.split())  # the callback wraps long lines
    assert f"test of tenant {q.name}: nothing to do: a test failover is already up" in said
    assert f"ansible-playbook playbooks/test_failover.yml -e tenant={q.name} -e cleanup=true" in said
    clean = play("test_failover.yml", "-e", f"tenant={q.name}", "-e", "cleanup=true")
    assert clean.rc == 0, clean.stdout[-3000:]
    assert q.production_vms("test-failover") == {}
    assert fl.target_snapshot(q.target_si) == before
    assert job_files(q) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-e", "tenant=nope"], "Unknown tenant nope; the inventory has {p}, {q}. Nothing was changed."),
        ([], "The play holds the replication targets of {p}, {q}: a failover acts on exactly one"),
        (["-e", "tenant={p}", "-e", "destination_vlan=999"], "destination VLAN 999 is not allowed for tenant {p}"),
        (["-e", "tenant={p}", "-e", "vms=nope-vm"], "VM nope-vm not on tenant {p}'s replication target"),
    ],
)
def test_bad_requests_are_refused_naming_the_problem(site: Any, args: list[str], message: str) -> None:
    p, q, play = site
    run = play("failover.yml", *[a.format(p=p.name, q=q.name) for a in args])
    assert run.rc != 0
    assert message.format(p=p.name, q=q.name) in " ".join(run.stdout.split()), run.stdout[-3000:]
    assert job_files(p) == []  # also after a job that failed
    assert p.placement() == {n: {"target"} for n in p.vms}
    assert q.placement() == {n: {"target"} for n in q.vms}


def test_a_rerun_after_the_controller_was_killed_shows_the_run_that_finished_meanwhile(site: Any) -> None:
    """ansible-playbook killed while the asynchronous run goes on: the run finishes on its own; running the
    playbook again says there is nothing to do *and* shows that run's summary and report file."""
    import json
    import subprocess
    import sys
    import time

    from support import ansible_env, kill_tree

    p, _q, _play = site
    journal_dir = p.tmp.parent / "journal"
    inventory = p.tmp.parent / "inventory"
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        str(REPO / "playbooks" / "failover.yml"),
        "-i",
        str(inventory),
        "-e",
        f"tenant={p.name}",
        "-e",
        "destination_vlan=3502",
        "-e",
        f"failover_journal_dir={journal_dir}",
        "-e",
        f"failover_report_dir={p.tmp.parent}/reports",
    ]
    controller = subprocess.Popen(
        command,
        cwd=REPO,
        env=ansible_env(**TEXT, ANSIBLE_ASYNC_DIR=str(p.tmp.parent / "async")),
        stdout=(p.tmp.parent / "killed.out").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    journal = None
    while journal is None and time.monotonic() < deadline:  # the run is journaled: kill the controller
        found = list((journal_dir / p.name).glob("*.json"))
        journal = found[0] if found else None
        time.sleep(0.1)
    assert journal is not None, (p.tmp.parent / "killed.out").read_text()[-3000:]
    while "power_on" not in json.loads(journal.read_text())["steps"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads(journal.read_text())["status"] == "running"
    # Killed while a worker runs a task (between two tasks ansible-playbook has none, and there was nothing
    # of the kind below to check: the assertion after the kill failed once, in CI, that way).
    while not _workers(controller.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    killed = kill_tree(controller.pid)  # ansible-playbook and its workers; the async job lives on
    controller.wait()
    assert len(killed) > 1  # the workers too
    left = killed[1:]
    while left and time.monotonic() < deadline:  # none left blocked on the dead controller's pipe
        left = [pid for pid in left if _state(pid) not in ("gone", "Z")]
        time.sleep(0.1)
    assert not left, left
    while json.loads(journal.read_text())["status"] != "done" and time.monotonic() < deadline:
        time.sleep(0.2)
    data = json.loads(journal.read_text())
    assert data["status"] == "done"
    assert p.placement() == {n: {"production"} for n in p.vms}

    again = _play("failover.yml", "-e", f"tenant={p.name}", "-e", "destination_vlan=3502")
    assert again.rc == 0, again.stdout[-3000:]
    out = " ".join(again.stdout.split())
    assert f"failover of tenant {p.name}: nothing to do" in out
    assert f"the last failover of tenant {p.name}, run {data['run_id']}, ended done" in out
    assert f"failover of tenant {p.name}, run {data['run_id']}: done, 2 VMs" in out
    assert f"report: {p.tmp.parent}/reports/{p.name}/{data['run_id']}.json" in out
    # The killed controller never collected its job's result: that job file stays, with the result in it
    # (async_status can still read it); the re-run's own job file went with its collected result.
    (left_file,) = job_files(p)
    assert json.loads((p.tmp.parent / "async" / left_file).read_text())["status"] == "done"


def _workers(pid: int) -> list[int]:
    """The children of ``pid`` that still run (ansible-playbook's workers, while a task runs)."""
    from tenantry.common import proctree

    return [child for child in proctree.children().get(pid, []) if _state(child) not in ("gone", "Z")]


def _state(pid: int) -> str:
    """A process's state letter (Z: a zombie, gone but not yet reaped by its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
