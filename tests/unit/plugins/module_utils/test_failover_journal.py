"""The failover run journal: atomic saves, one run per tenant at a time, finding the run to resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.tenantry.msp.plugins.module_utils._failover.journal import (
    Journal,
    JournalError,
    atomic_write_json,
    tenant_lock,
)


def test_a_saved_journal_reads_back_and_is_private(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, "acme", "failover", {"vms": ["a"]})
    journal.set_vm("a", vmx="[nfs-acme] a/a.vmx", origin="acme-target-01")
    journal.vm_step("a", "register").update(state="done", started=1.0, ended=2.0)
    journal.begin_attempt("attempt-1")
    journal.save()
    assert journal.path.parent == tmp_path / "acme"
    assert (journal.path.stat().st_mode & 0o777) == 0o600
    again = Journal.load(journal.path)
    assert again.vms["a"]["vmx"] == "[nfs-acme] a/a.vmx"
    assert again.vm_step_state("a", "register") == "done"
    assert again.vm_step_state("a", "unregister") == "pending"
    assert Journal.by_attempt(tmp_path, "acme", "attempt-1").run_id == journal.run_id  # type: ignore[union-attr]
    assert not list(journal.path.parent.glob("*.tmp"))


def test_atomic_write_leaves_the_old_file_when_serialising_fails(tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    atomic_write_json(path, {"ok": 1})

    class Unserialisable:
        def __str__(self) -> str:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_write_json(path, {"bad": Unserialisable()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["j.json"]


def test_active_and_latest_runs(tmp_path: Path) -> None:
    done = Journal.create(tmp_path, "acme", "failover", {})
    done.data.update(status="done", created=time.time() - 10)
    done.save()
    assert Journal.active(tmp_path, "acme") is None
    running = Journal.create(tmp_path, "acme", "test", {})
    running.save()
    active = Journal.active(tmp_path, "acme")
    assert active is not None and active.run_id == running.run_id
    latest = Journal.latest(tmp_path, "acme", ("failover",))
    assert latest is not None and latest.run_id == done.run_id
    assert Journal.active(tmp_path, "globex") is None
    (tmp_path / "acme" / "junk.json").write_text("{not json")
    assert len(Journal.runs(tmp_path, "acme")) == 2


def test_one_run_per_tenant_and_the_lock_dies_with_its_process(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from ansible_collections.tenantry.msp.plugins.module_utils._failover.journal import tenant_lock\n"
            "with tenant_lock(sys.argv[1], 'acme'):\n"
            "    print('locked', flush=True)\n"
            "    time.sleep(60)\n",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        busy = rf"another failover run for tenant acme is in progress \(pid {holder.pid}\)"
        with pytest.raises(JournalError, match=busy), tenant_lock(tmp_path, "acme"):
            pass
        with tenant_lock(tmp_path, "globex"):
            pass  # another tenant is not blocked
    finally:
        holder.kill()  # SIGKILL: the kernel releases the flock
        holder.wait()
    with tenant_lock(tmp_path, "acme"):
        pass


def test_an_unreadable_journal_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"format": 99}))
    with pytest.raises(JournalError, match="is not a tenantry failover journal"):
        Journal.load(path)
