"""Runs the collection's playbooks with ansible-runner, in its own process (the jobs virtualenv).

``ansible-runner run <dir> -p <playbook> -j`` prints every event as one JSON line; they are read as
they come.  ansible-runner also keeps its artifacts (stdout, every event, status, rc) in
``<dir>/artifacts/job``: that directory is the run's record on disk.  The extra vars file marks
what a user typed ``!unsafe``, so no VM name can ever be a template.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tenantry.common.proctree import stop_tree
from tenantry.director.config import JobsConfig
from tenantry.director.jobs.backend import Emit, JobError, JobOutcome, JobSpec, extravars_yaml

log = logging.getLogger(__name__)
_LINE_LIMIT = 64 << 20  # an event holding a 1,000-VM report is a few MiB
# Seconds a stopped job's processes get to end after SIGTERM (ansible-runner records the run as canceled)
# before whatever still runs is killed.
STOP_GRACE = 5.0
_KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME")


class RunnerBackend:
    name = "runner"

    def __init__(self, config: JobsConfig) -> None:
        self.config = config

    def playbook_arg(self, playbook: str) -> str:
        if self.config.project_dir is not None:
            return str(Path("playbooks") / playbook)
        return "tenantry.msp." + playbook.removesuffix(".yml")  # the collection's playbook by FQCN

    def prepare(self, spec: JobSpec) -> list[str]:
        """Write the private data directory; the command line."""
        if not self.config.enabled:
            raise JobError("jobs are not enabled on this Director ([jobs] enabled = true in its configuration)")
        runner = self.config.ansible_runner
        if not os.access(runner, os.X_OK):
            raise JobError(f"{runner} is not an executable ansible-runner (the [jobs] ansible_runner setting)")
        env_dir = spec.directory / "env"
        env_dir.mkdir(parents=True, exist_ok=True)
        spec.directory.chmod(0o700)
        _write(env_dir / "extravars", extravars_yaml(self.config.extravars | spec.extravars, spec.unsafe))
        _write(env_dir / "envvars", json.dumps(self.config.env))
        # The module's own timeout stops a stuck playbook; ansible-runner's is a last resort.
        _write(env_dir / "settings", json.dumps({"job_timeout": int(spec.timeout) + 60, "suppress_output_file": False}))
        argv = [str(runner), "run", str(spec.directory), "-p", self.playbook_arg(spec.playbook)]
        argv += ["--ident", "job", "-j", "--rotate-artifacts", "1"]
        if self.config.project_dir is not None:
            argv += ["--project-dir", str(self.config.project_dir)]
        for inventory in self.config.inventory:
            argv += ["--inventory", str(inventory)]
        return argv

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in _KEEP_ENV}
        # ansible-playbook lives beside ansible-runner in the jobs virtualenv.
        bin_dir = str(self.config.ansible_runner.parent)
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.update(self.config.env)
        return env

    async def run(self, spec: JobSpec, emit: Emit, started: Callable[[str], None]) -> JobOutcome:
        argv = self.prepare(spec)
        log.info("job %s: %s", spec.run_id, " ".join(argv[:5]))
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.environment(),
            cwd=str(spec.directory),
            limit=_LINE_LIMIT,
            start_new_session=True,  # the whole job (ansible-playbook, its workers) is one process group
        )
        started(f"pid {proc.pid}")
        assert proc.stdout is not None and proc.stderr is not None
        errors = asyncio.create_task(proc.stderr.read())
        try:
            async with asyncio.timeout(spec.timeout):
                async for line in proc.stdout:
                    event = _event(line)
                    if event is not None:
                        emit(event)
                rc = await proc.wait()
        except (TimeoutError, asyncio.CancelledError) as exc:
            errors.cancel()
            await _stop(proc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return JobOutcome("failed", f"pid {proc.pid}", None, f"stopped after {spec.timeout:.0f} s (jobs_timeout)")
        stderr = (await errors).decode(errors="replace").strip()
        status = _artifact_status(spec.directory) or ("successful" if rc == 0 else "failed")
        message = "" if status == "successful" else (stderr.splitlines()[-1][:500] if stderr else f"exit status {rc}")
        return JobOutcome(status, f"pid {proc.pid}", rc, message)


def _event(line: bytes) -> dict[str, Any] | None:
    line = line.strip()
    if not line.startswith(b"{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event" in event else None


def _artifact_status(directory: Path) -> str | None:
    try:
        status = (directory / "artifacts" / "job" / "status").read_text().strip()
    except OSError:
        return None
    return {"successful": "successful", "canceled": "canceled"}.get(status, "failed")


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """End the whole job: ansible-runner's group and every process below it, also those in sessions of
    their own (ansible-playbook runs on ansible-runner's pseudo-terminal, ansible-core's workers call
    setsid()), which a signal to the group would miss: left running they would go on acting after the job
    was reported stopped. SIGTERM first, SIGKILL what still runs after STOP_GRACE seconds."""
    signalled = await stop_tree(proc.pid, grace=STOP_GRACE, group=proc.pid)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(STOP_GRACE):
            await proc.wait()  # gone already: reaped
    log.info("job pid %s: stopped %d processes", proc.pid, len(signalled))


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
