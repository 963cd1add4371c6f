"""tenantry.msp.failover's action plugin, asynchronously: the detached job as ``async`` users know it.

With a local connection the failover runs without a module process (plugins/action/failover.py): with
``async`` as a job of its own that writes Ansible's ``results_file``.  Here a playbook starts it with
``async``/``poll: 0`` and follows it with plain ``async_status``, as any playbook may: a run that
outlives its ``async`` seconds is stopped and says so, without a secret in the job file or the output,
and running the same mode again resumes it to the end.  (The role's own use, started and followed
with ``failover_info``, is tested in test_failover_playbooks.py; synchronous and check-mode calls in
test_failover_module.py.)
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from support import run_module, run_playbook

pytestmark = pytest.mark.integration


def test_an_async_run_past_its_timeout_is_stopped_and_a_rerun_resumes_it(tmp_path: Path, lab_tenant: Any) -> None:
    # The others boot 10 s after the first VM: the run is still going when its 4 s are up (it reaches the
    # power-on in well under 4 s, also on a loaded machine).
    t = lab_tenant("fa", vms=3, boot_order=[{"vms": ["{name}-vm01"], "delay": 10}])
    async_dir = tmp_path / "async"
    play = [
        {
            "name": "an asynchronous failover, followed with async_status",
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {"name": "start", "tenantry.msp.failover": t.args(), "async": 4, "poll": 0, "register": "job"},
                {
                    "name": "follow",
                    "ansible.builtin.async_status": {"jid": "{{ job.ansible_job_id }}"},
                    "register": "status",
                    "until": "status.finished",
                    "retries": 80,
                    "delay": 0.5,
                    "ignore_errors": True,
                },
            ],
        }
    ]
    playbook = tmp_path / "async.yml"
    playbook.write_text(json.dumps(play))
    playbook.chmod(0o600)
    run = run_playbook(playbook, "-i", "localhost,", "-c", "local", env={"ANSIBLE_ASYNC_DIR": str(async_dir)})

    started, ended = run.results[0], run.results[-1]
    assert started["ansible_job_id"] and Path(started["results_file"]).parent == async_dir, run.stdout[-3000:]
    assert ended["failed"] and ended["finished"], run.stdout[-3000:]
    assert "did not end within the task's async timeout (4 s" in ended["msg"]
    assert "run the same mode again to resume it" in ended["msg"]
    job_file = Path(started["results_file"]).read_text()
    for secret in (t.vcenter.password, t.target.password):
        assert secret not in job_file and secret not in run.stdout + run.stderr

    # The job is gone (its process is the journaled attempt's), and it had begun: part of the VMs moved.
    journal = json.loads(next((t.tmp / "journal").glob("*/*.json")).read_text())
    pid = journal["attempts"][-1]["pid"]
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists() and pid != os.getpid()
    assert journal["status"] == "running"
    assert any(places == {"production"} for places in t.placement().values())

    rerun = run_module(tmp_path, "tenantry.msp.failover", t.args())
    assert rerun.rc == 0 and rerun.result["status"] == "done", rerun.stdout[-3000:]
    assert t.placement() == {name: {"production"} for name in t.vms}
