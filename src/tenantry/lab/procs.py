"""Is a pid still the lab process we started?  One reading of /proc for every kind of lab process.

A pid is ours when it is alive (not a zombie) and its command line carries the marker we started it with.
A process in the middle of ``execve`` briefly shows an empty command line (the kernel has swapped in the
new address space but not yet its arguments); the lab's processes exec on purpose (``ip netns exec``, the
boot agent becoming the simulator), so an empty one is read again rather than taken for "not ours".
"""

from __future__ import annotations

import time
from pathlib import Path

EXEC_WINDOW_SECONDS = 2.0


def _read(pid: int) -> tuple[str, bytes] | None:
    """(state letter, command line) of ``pid``, or None when there is no such process."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return None
    return state, cmdline


def running_as(pid: int, marker: bytes, *, program_only: bool = False) -> bool:
    """True when ``pid`` is alive and ``marker`` is in its command line (in its program name only, if asked)."""
    deadline = time.monotonic() + EXEC_WINDOW_SECONDS
    while True:
        read = _read(pid)
        if read is None or read[0] == "Z":
            return False
        cmdline = read[1]
        if cmdline or time.monotonic() > deadline:
            break
        time.sleep(0.005)  # mid-exec: its new command line is a moment away
    return marker in (cmdline.split(b"\0", 1)[0] if program_only else cmdline)
