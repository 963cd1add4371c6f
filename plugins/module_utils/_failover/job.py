# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""A failover as a detached job on the controller: what ``async`` gives a module, without the module.

Ansible runs an asynchronous module by building its payload, starting ``async_wrapper`` (a module
too) and then the module: three Python starts and two payloads, about 1.2 s before the run begins,
paid again by each of 20 tenants failing over at once.  The action plugin of ``tenantry.msp.failover``
calls :func:`start` instead, in the controller's worker:

- the job file (Ansible's ``results_file``, under the ``async_dir``) says ``started`` at once;
- ``python -m`` this module, with the controller's Python, gets the call on its standard input (the
  options and their secrets never reach a command line, an environment or a file); it forks and its
  parent exits, so the job leaves the controller's process tree and session, as ``async_wrapper``'s
  does: ansible-playbook killed meanwhile does not stop the run;
- the job writes the task's result to the job file when the call returns (whole: a temporary file
  renamed), or, after ``timeout`` seconds (the task's ``async``), a failed result that says so, and
  ends; the run is journaled, so running the same mode again resumes it.

``async_status`` and ``failover_info`` read the job file as they read ``async_wrapper``'s.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._failover.journal import atomic_write_json

# Seconds the job's launcher may take to read its call and fork (a Python start, no imports).
START_TIMEOUT = 60


class JobError(Exception):
    """The job could not be started."""


def start(call_args: dict[str, Any], async_dir: str, timeout: int) -> dict[str, Any]:
    """Start the job for ``call_args`` (``params``, ``check_mode``, ``diff``, ``no_log_values``) and
    return the task's result, as ``async_wrapper`` gives it: ``ansible_job_id`` and ``results_file``."""
    folder = Path(async_dir).expanduser()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    jid = "j%d.%d" % (random.randint(0, 999999999999), os.getpid())
    job_file = folder / jid
    atomic_write_json(job_file, {"started": 1, "finished": 0, "ansible_job_id": jid})
    payload = dict(call_args, job_file=str(job_file), timeout=timeout, no_log_values=sorted(call_args["no_log_values"]))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([_collections_root()] + [p for p in [env.get("PYTHONPATH")] if p])
    try:
        launcher = subprocess.run(
            [sys.executable, "-m", __name__],
            input=json.dumps(payload).encode(),
            capture_output=True,
            env=env,
            cwd="/",
            close_fds=True,
            start_new_session=True,
            timeout=START_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        job_file.unlink(missing_ok=True)
        raise JobError("could not start the failover job with %s: %s" % (sys.executable, exc)) from exc
    if launcher.returncode != 0:
        job_file.unlink(missing_ok=True)
        lines = launcher.stderr.decode(errors="replace").strip().splitlines()
        detail = lines[-1] if lines else "exit status %d" % launcher.returncode
        raise JobError("could not start the failover job with %s: %s" % (sys.executable, detail))
    return {"started": 1, "finished": 0, "changed": True, "ansible_job_id": jid, "results_file": str(job_file)}


def _collections_root() -> str:
    """The folder holding ``ansible_collections/tenantry/msp`` that this module was imported from."""
    here = Path(__file__).absolute()  # not resolved: the collection may be a symbolic link
    return str(here.parents[6])


def _run(payload: dict[str, Any]) -> None:
    """In the job: the call, its result in the job file, the timeout."""
    job_file, secrets = Path(payload["job_file"]), set(payload["no_log_values"])
    ended = threading.Lock()

    def finish(result: dict[str, Any]) -> None:
        if ended.acquire(blocking=False):
            atomic_write_json(job_file, result)

    def give_up() -> None:
        msg = (
            "the failover did not end within the task's async timeout (%d s, failover_timeout) and was stopped; "
            "the run is journaled: run the same mode again to resume it" % payload["timeout"]
        )
        finish({"failed": True, "msg": msg})
        os._exit(1)

    timer = threading.Timer(payload["timeout"], give_up)
    timer.daemon = True
    timer.start()
    try:
        from ansible_collections.tenantry.msp.plugins.module_utils._failover.call import call, task_result

        result = task_result(call(payload["params"], payload["check_mode"]), payload["diff"], secrets)
    except BaseException as exc:  # a defect: the task says what it was, without a secret in it
        from ansible_collections.tenantry.msp.plugins.module_utils._diff import masked

        died = {"failed": True, "msg": "the failover job died: %s: %s" % (type(exc).__name__, exc)}
        died["exception"] = traceback.format_exc()
        result = masked(died, secrets)
    finish(result)


def main() -> None:
    payload = json.loads(sys.stdin.buffer.read())
    if os.fork():
        os._exit(0)  # the launcher returns; the job, orphaned, is no longer the controller's child
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    try:
        _run(payload)
    finally:
        os._exit(0)


if __name__ == "__main__":
    main()
