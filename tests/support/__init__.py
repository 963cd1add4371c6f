"""Helpers shared by the tests: run tenantry.msp modules the way users do, through ansible-playbook."""

from __future__ import annotations

import ctypes
import functools
import json
import os
import pickle
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenantry.common import proctree

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


def kill_tree(pid: int) -> list[int]:
    """SIGKILL a process and every process below it, also those in sessions of their own: ansible-core's
    workers call setsid(), so killing ansible-playbook's process group leaves them behind, blocked for ever on
    the results pipe of a dead controller. The walk is the Director's own (tenantry.common.proctree, which
    stops a job the same way). Returns the pids killed (for a test to check they are gone)."""
    return proctree.kill_tree(pid)


def _mount_points() -> set[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        return {line.split()[4].encode().decode("unicode_escape") for line in handle}


def unmount_under(root: Path) -> list[str]:
    """Unmount everything mounted at or below root, deepest first (a loop mount frees its loop device), and
    detach any loop device still backed by a file below root. For tests that mount filesystems; returns what
    it unmounted."""
    prefix = str(root.resolve())
    points = [point for point in _mount_points() if point == prefix or point.startswith(prefix + "/")]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        if backing.read_text().strip().startswith(prefix + "/"):
            subprocess.run(["losetup", "-d", f"/dev/{backing.parts[3]}"], check=False, capture_output=True)
    return points


CLONE_NEWNS = 0x00020000


def in_own_mount_namespace(test: Callable[..., None]) -> Callable[..., None]:
    """Run a test that mounts filesystems in a child process with a private mount namespace of its own.

    A mount made in the machine's namespace is copied into every mount namespace created while it exists (a
    podman container starting, ip netns exec in a lab running next to the tests), and such a copy keeps its
    loop device busy for as long as that process lives. Mounting in a namespace of its own keeps the test's
    mounts out of the other suites' processes, and theirs out of the test. The child reports its outcome
    (the assertion with pytest's explanation) back to the test; its mounts go away with it."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: one thread, so unshare(CLONE_NEWNS) is allowed
            os.close(reader)
            outcome: tuple[str, str] = ("ok", "")
            try:
                if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNS) != 0:
                    raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
                subprocess.run(["mount", "--make-rprivate", "/"], check=True)
                before = _mount_points()
                try:
                    test(*args, **kwargs)
                finally:
                    for point in sorted(_mount_points() - before, key=len, reverse=True):
                        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
            except BaseException as error:  # handed to the parent whatever it is
                outcome = (type(error).__name__, "".join(traceback.format_exception(error)))
            with os.fdopen(writer, "wb") as pipe:
                pipe.write(pickle.dumps(outcome))
            os._exit(0)
        os.close(writer)
        with os.fdopen(reader, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        if not data:
            raise AssertionError(f"the test's child process died without an outcome (wait status {status})")
        kind, text = pickle.loads(data)
        if kind != "ok":
            raise AssertionError(f"in its own mount namespace the test raised {kind}:\n{text}")

    return run
