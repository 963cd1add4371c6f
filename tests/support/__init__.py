"""Helpers shared by the tests: run tenantry.msp modules the way users do, through ansible-playbook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def ansible_env(**extra: str) -> dict[str, str]:
    """The environment `make` gives ansible: the repo's ansible.cfg and collections."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_NOCOLOR="1",
        # Local tasks run on this interpreter (inventory variables still win for remote hosts).
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    env.update(extra)
    return env


@dataclass
class PlaybookRun:
    """One ansible-playbook run: its exit code, raw output, and each task's result on localhost."""

    rc: int
    stdout: str
    stderr: str
    results: list[dict[str, Any]]

    @property
    def result(self) -> dict[str, Any]:
        """The last task's result."""
        return self.results[-1]


def run_playbook(playbook: Path, *args: str, env: dict[str, str] | None = None, timeout: int = 300) -> PlaybookRun:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), str(playbook), *args],
        capture_output=True,
        text=True,
        env=ansible_env(**(env or {})),
        timeout=timeout,
        cwd=REPO,
    )
    results: list[dict[str, Any]] = []
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        report = {}
    for play in report.get("plays", []):
        for task in play.get("tasks", []):
            for host_result in task.get("hosts", {}).values():
                results.append(host_result)
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, results)


def run_module(
    tmp_path: Path,
    module: str,
    args: dict[str, Any],
    *,
    check: bool = False,
    diff: bool = False,
    env: dict[str, str] | None = None,
) -> PlaybookRun:
    """Run one module task on localhost; arguments go through a 0600 playbook file, never argv."""
    play = [
        {
            "name": "test",
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [{"name": module, module: args, "ignore_errors": True}],
        }
    ]
    path = tmp_path / f"play-{len(list(tmp_path.glob('play-*.yml')))}.yml"
    path.write_text(json.dumps(play))
    path.chmod(0o600)
    flags = ["-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable]
    if check:
        flags.append("--check")
    if diff:
        flags.append("--diff")
    return run_playbook(path, *flags, env=env)


def unmount_under(root: Path) -> list[str]:
    """Unmount everything mounted at or below root, deepest first (a loop mount frees its loop device), and
    detach any loop device still backed by a file below root. For tests that mount filesystems; returns what
    it unmounted."""
    prefix = str(root.resolve())
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    for point in sorted(set(points), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        if backing.read_text().strip().startswith(prefix + "/"):
            subprocess.run(["losetup", "-d", f"/dev/{backing.parts[3]}"], check=False, capture_output=True)
    return points
