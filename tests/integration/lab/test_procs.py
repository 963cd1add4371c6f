"""Is a pid still the lab process we started: read right through an exec (real processes, real /proc)."""

from __future__ import annotations

import subprocess
import sys

from tenantry.lab.procs import running_as

# Like the boot agent (`ip netns exec ... esx-boot`, then the simulator): a process that execs itself into
# another program whose command line carries the same marker.
EXEC_AGAIN = "import os, sys; os.execv(sys.executable, [sys.executable, '-c', 'pass', 'tnt-marker'])"


def test_a_process_in_the_middle_of_exec_is_still_ours() -> None:
    reads = 0
    for _ in range(40):
        proc = subprocess.Popen([sys.executable, "-c", EXEC_AGAIN, "tnt-marker"])
        while proc.poll() is None:
            alive = running_as(proc.pid, b"tnt-marker")
            # False only once it has exited (a zombie until we reap it): never half-way through the exec.
            assert alive or proc.poll() is not None or _zombie(proc.pid)
            reads += 1
        proc.wait()
    assert reads > 100
    assert not running_as(proc.pid, b"tnt-marker")  # reaped: gone


def test_the_marker_must_match() -> None:
    proc = subprocess.Popen(["sleep", "5"])
    try:
        assert running_as(proc.pid, b"sleep", program_only=True)
        assert not running_as(proc.pid, b"tnt-marker")
        assert not running_as(proc.pid, b"5", program_only=True)  # an argument, not the program
    finally:
        proc.kill()
        proc.wait()


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True
