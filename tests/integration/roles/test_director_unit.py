"""The director role's systemd unit: stopping or restarting the Director leaves a started failover job running.

A console failover runs ansible-playbook under the Director; its failover task starts a detached job (the
failover action plugin's ``_failover/job.py``: setsid and fork, out of ansible-playbook's process tree) that
must finish on its own when the Director stops (docs/console.md). setsid does not leave the unit's cgroup:
with systemd's default ``KillMode=control-group`` a ``systemctl stop``/``restart`` kills it with the rest.

Here a podman container with systemd as PID 1 (the molecule image) runs the role's own unit template,
rendered with a stand-in for the Director's main process that starts one job exactly as the action plugin
does (the real ``job.start``); only the failover call under the job is a stub (it sleeps, then returns), as
the container has no vCenter. The Director's own stop of its jobs' process trees (ansible-runner and
below) is tested in tests/integration/console/test_runner_stop.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest
from support import REPO

pytestmark = pytest.mark.integration

IMAGE = "localhost/tenantry-systemd:bookworm-2"
STATE = "/var/lib/tenantry-director"
UTILS = "/opt/c/ansible_collections/tenantry/msp/plugins/module_utils"
# Seconds the stubbed failover takes: the restart happens well inside them.
JOB_SECONDS = 15

STANDIN = f"""\
import json, os, sys, time
sys.path.insert(0, "/opt/c")
from ansible_collections.tenantry.msp.plugins.module_utils._failover import job
if not os.path.exists("{STATE}/started.json"):  # the first start only: the restarted one just runs
    call = {{"params": {{"sleep": {JOB_SECONDS}}}, "check_mode": False, "diff": False, "no_log_values": set()}}
    json.dump(job.start(call, "{STATE}/async", 600), open("{STATE}/started.json", "w"))
while True:
    time.sleep(3600)
"""
STUB_CALL = f"""\
import os, time
def call(params, check_mode):
    open("{STATE}/job.pid", "w").write(str(os.getpid()))
    time.sleep(params["sleep"])
    return {{"changed": True, "status": "done"}}
def task_result(result, diff, secrets):
    return result
"""


def podman_env() -> dict[str, str]:
    """The project's containers.conf (lab/containers/podman-env.sh renders it)."""
    conf = subprocess.run(
        ["bash", "-c", '. lab/containers/podman-env.sh && printf %s "$CONTAINERS_CONF"'],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(os.environ, CONTAINERS_CONF=conf)


def unit_text() -> str:
    """The role's unit template, rendered with the stand-in's paths."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["comment"] = lambda text: "# " + text
    template = env.from_string((REPO / "roles/director/templates/tenantry-director.service.j2").read_text())
    return template.render(
        ansible_managed="rendered by test_director_unit.py",
        director_user="tenantry",
        director_venv="/opt/director",
        director_state_dir=STATE,
        __director_seeds_file="/etc/tenantry-director/seeds",
        __director_config_file="/etc/tenantry-director/config.toml",
    )


class Host:
    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name, self.env = name, env

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True, check=check, timeout=120)

    def sh(self, script: str, check: bool = True) -> str:
        return self.podman("exec", self.name, "sh", "-c", script, check=check).stdout.strip()

    def put(self, path: str, text: str, mode: int = 0o644) -> None:
        subprocess.run(
            ["podman", "exec", "-i", self.name, "sh", "-c", f"cat > {path} && chmod {mode:o} {path}"],
            input=text,
            env=self.env,
            text=True,
            check=True,
            timeout=60,
        )

    def alive(self, pid: str) -> bool:
        return self.podman("exec", self.name, "kill", "-0", pid, check=False).returncode == 0


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    env = podman_env()
    subprocess.run([str(REPO / "lab/containers/build-image.sh")], env=env, check=True, capture_output=True)
    name = f"tnt-test-director-unit-{os.getpid()}"
    subprocess.run(["podman", "rm", "-f", name], env=env, capture_output=True, check=False)
    h = Host(name, env)
    try:
        h.podman("run", "-d", "--name", name, "--systemd=always", IMAGE, "/sbin/init")
        deadline = time.monotonic() + 60
        while h.sh("systemctl is-system-running", check=False) not in ("running", "degraded"):
            assert time.monotonic() < deadline, "systemd did not come up in the container"
            time.sleep(0.2)
        yield h
    finally:
        subprocess.run(["podman", "rm", "-f", name], env=env, capture_output=True, check=False)


def test_restarting_the_director_leaves_a_started_failover_job_running(host: Host) -> None:
    host.sh(f"useradd --system tenantry && mkdir -p {UTILS}/_failover /opt/director/bin /etc/tenantry-director {STATE}")
    for rel in ("_failover/job.py", "_failover/journal.py", "_diff.py"):
        host.put(f"{UTILS}/{rel}", (REPO / "plugins/module_utils" / rel).read_text())
    host.put(f"{UTILS}/_failover/call.py", STUB_CALL)
    host.put("/opt/director/bin/standin.py", STANDIN)
    host.put(
        "/opt/director/bin/tenantry-director", "#!/bin/sh\nexec /usr/bin/python3 /opt/director/bin/standin.py\n", 0o755
    )
    host.put("/etc/systemd/system/tenantry-director.service", unit_text())
    host.sh(f"chown -R tenantry: {STATE} && systemctl daemon-reload && systemctl start tenantry-director")
    deadline = time.monotonic() + 30
    while not host.sh(f"cat {STATE}/job.pid 2>/dev/null", check=False):
        assert time.monotonic() < deadline, host.sh("journalctl -u tenantry-director --no-pager | tail", check=False)
        time.sleep(0.1)
    job_pid, first_main = (
        host.sh(f"cat {STATE}/job.pid"),
        host.sh("systemctl show -p MainPID --value tenantry-director"),
    )
    # The job left the Director's process tree, not its unit.
    assert "tenantry-director.service" in host.sh(f"cat /proc/{job_pid}/cgroup")
    job_file = json.loads(host.sh(f"cat {STATE}/started.json"))["results_file"]
    assert json.loads(host.sh(f"cat {job_file}"))["finished"] == 0

    host.sh("systemctl restart tenantry-director")
    assert host.sh("systemctl show -p MainPID --value tenantry-director") not in ("0", first_main)
    assert host.alive(job_pid), "systemctl restart tenantry-director killed the failover job"
    deadline = time.monotonic() + JOB_SECONDS + 30
    while host.alive(job_pid):  # it finishes on its own, with its result in the job file
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert json.loads(host.sh(f"cat {job_file}")) == {"changed": True, "status": "done"}
