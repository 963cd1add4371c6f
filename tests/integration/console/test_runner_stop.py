"""A job the Director stops (jobs_timeout, or the Director stopping) leaves no process behind.

A real ansible-runner runs a real playbook whose task loops for ever, writing a heartbeat file. The job's
processes are not all in the process group the Director started: ansible-runner runs ansible-playbook on a
pseudo-terminal (a session of its own), ansible-core's workers call setsid(), and a module's child may too.
Every process of the job carries a marker in its environment (the job's ``[jobs.env]``), so the test finds
them all in /proc, wherever they were reparented to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from consolesite import runner_config

from tenantry.director.jobs.backend import JobSpec
from tenantry.director.jobs.runner import RunnerBackend

pytestmark = pytest.mark.integration
MARKER = "TENANTRY_TEST_JOB"
LOOP = 'while :; do echo beat >> "$1"; sleep 0.2; done'
PLAYBOOK = """\
- hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  tasks:
    - name: Beat for ever
      ansible.builtin.command:
        argv: {argv}
"""
# The loop as the module's child, as a child that left for a session of its own, and as one that ignores
# SIGTERM (so it is killed once the grace period is over).
COMMANDS = {
    "module child": ["/bin/sh", "-c", LOOP, "beat", "{heartbeat}"],
    "setsid child": ["setsid", "-w", "/bin/sh", "-c", LOOP, "beat", "{heartbeat}"],
    "ignores SIGTERM": ["setsid", "-w", "/bin/sh", "-c", "trap '' TERM; " + LOOP, "beat", "{heartbeat}"],
}


def job_processes(token: str) -> list[int]:
    """The live processes whose environment holds the job's marker (zombies have none)."""
    wanted = f"{MARKER}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def describe(pids: list[int]) -> list[str]:
    lines = []
    for pid in pids:
        try:
            lines.append(f"{pid}: " + (Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]))
        except OSError:
            lines.append(f"{pid}: gone")
    return lines


class Job:
    def __init__(self, tmp_path: Path, command: str, timeout: float) -> None:
        self.token = secrets.token_hex(8)
        self.heartbeat = tmp_path / "heartbeat"
        project = tmp_path / "project"
        (project / "playbooks").mkdir(parents=True)
        argv = [part.format(heartbeat=self.heartbeat) for part in COMMANDS[command]]
        (project / "playbooks" / "beat.yml").write_text(PLAYBOOK.format(argv=json.dumps(argv)))
        self.backend = RunnerBackend(runner_config(project, {MARKER: self.token}))
        self.spec = JobSpec(
            run_id="r1",
            kind="beat",
            playbook="beat.yml",
            title="beat",
            tenant="rnr1",
            extravars={"tenant": "rnr1"},
            timeout=timeout,
            directory=tmp_path / "run",
        )

    def beating(self) -> bool:
        return self.heartbeat.exists() and self.heartbeat.stat().st_size > 0


@pytest.fixture
def jobs() -> Iterator[list[Job]]:
    made: list[Job] = []
    yield made
    for job in made:  # whatever a failing test left running goes now
        for pid in job_processes(job.token):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_job_stopped_by_jobs_timeout_leaves_no_process(tmp_path: Path, jobs: list[Job], command: str) -> None:
    # 20 s: ansible-playbook starts the task within a few seconds even on a busy machine.
    job = Job(tmp_path, command, timeout=20)
    jobs.append(job)
    events: list[dict[str, object]] = []
    outcome = asyncio.run(job.backend.run(job.spec, events.append, lambda ref: None))
    assert outcome.status == "failed" and outcome.message == "stopped after 20 s (jobs_timeout)"
    left = job_processes(job.token)
    assert job.beating(), "the task never started: nothing was there to stop"
    assert not left, describe(left)
    size = job.heartbeat.stat().st_size
    time.sleep(1)
    assert job.heartbeat.stat().st_size == size  # nobody beats any more


def test_a_cancelled_job_leaves_no_process(tmp_path: Path, jobs: list[Job]) -> None:
    """The Director stopping cancels its runs: their processes go with them."""
    job = Job(tmp_path, "setsid child", timeout=600)
    jobs.append(job)

    async def cancel_once_beating() -> None:
        task = asyncio.create_task(job.backend.run(job.spec, lambda event: None, lambda ref: None))
        deadline = time.monotonic() + 120
        while not job.beating() and time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.1)
        assert job.beating(), "the task never started"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_once_beating())
    left = job_processes(job.token)
    assert not left, describe(left)
