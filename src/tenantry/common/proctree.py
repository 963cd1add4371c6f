"""Stop a process and everything below it, also what left its process group or session.

Signalling a process group misses the processes that called setsid(): ansible-runner runs ansible-playbook
on a pseudo-terminal (a session of its own), ansible-core's workers call setsid(), and a module's child may
too. They are found by walking the parent links in /proc instead. Each process is stopped (SIGSTOP) before
its children are read, so none forks away meanwhile, and the whole tree is read before any of it is told to
end, so none is reparented away (a dying parent hands its children to init) before it was seen.

A process that double-forked away before the walk (an Ansible ``async`` task: it is made to outlive the
playbook) is no longer below the tree and is not touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

# (pid, start time in clock ticks since boot): a pid alone may be reused once its process is gone.
Proc = tuple[int, int]

_POLL = 0.05


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command's parenthesis (state first), or None when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _scan() -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Every process's children and every process group's members, read from /proc."""
    children: dict[int, list[int]] = {}
    groups: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is None or len(fields) < 3:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        groups.setdefault(int(fields[2]), []).append(int(entry.name))
    return children, groups


def children() -> dict[int, list[int]]:
    """Every process's children, read from /proc."""
    return _scan()[0]


def _identity(pid: int) -> Proc | None:
    fields = _stat(pid)
    if fields is None or len(fields) < 20 or fields[0] in ("Z", "X"):
        return None  # gone, or a zombie: it runs no more
    return pid, int(fields[19])


def alive(proc: Proc) -> bool:
    """True while that very process (not a later one with its pid) still runs."""
    return _identity(proc[0]) == proc


def freeze(roots: Iterable[int], *, group: int | None = None) -> list[Proc]:
    """SIGSTOP the roots, the members of process group ``group``, and every process below them; returns
    them, parents before their children. Never this process or init. A process this one may not signal
    (another user's) is returned too, for its children are walked all the same."""
    never = {0, 1, os.getpid()}
    stopped: dict[int, Proc] = {}
    layer = list(roots)
    if group is not None and group not in never:
        layer += _scan()[1].get(group, [])
    while layer:
        frozen = []
        for pid in layer:
            if pid in never or pid in stopped:
                continue
            proc = _identity(pid)
            if proc is None:
                continue
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                continue
            except PermissionError:  # another user's (a become task's module): its children may be ours
                pass
            stopped[pid] = proc
            frozen.append(pid)
        tree = children() if frozen else {}  # read after this layer stopped: it forks no more
        layer = [child for pid in frozen for child in tree.get(pid, [])]
    return list(stopped.values())


def send(procs: Iterable[Proc], signum: int) -> None:
    """Send ``signum`` to each process that still runs (a gone one's pid may belong to another by now)."""
    for proc in procs:
        if alive(proc):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc[0], signum)


def kill_tree(pid: int, *, group: int | None = None) -> list[int]:
    """SIGKILL a process and every process below it (and group ``group``'s members); the pids killed."""
    procs = freeze([pid], group=group)
    send(procs, signal.SIGKILL)
    return [p for p, _start in procs]


async def stop_tree(pid: int, *, grace: float, group: int | None = None) -> list[int]:
    """SIGTERM a process, every process below it and group ``group``'s members; SIGKILL whatever still runs
    ``grace`` seconds later (and what it started meanwhile); return once all of them are gone (at most a few
    seconds more: a process in uninterruptible sleep dies when it wakes). The pids signalled."""
    procs = freeze([pid], group=group)
    send(procs, signal.SIGTERM)
    send(procs, signal.SIGCONT)  # stopped, they would not act on it
    try:
        await _gone(procs, grace)
    finally:  # also when cancelled while waiting: nothing is left to run
        left = [p for p in procs if alive(p)]
        if left:
            killed = freeze([p for p, _start in left])
            send(killed, signal.SIGKILL)
            procs += [p for p in killed if p not in procs]
            await _gone(killed, grace)
    return [p for p, _start in procs]


async def _gone(procs: list[Proc], within: float) -> bool:
    deadline = time.monotonic() + within
    while any(alive(p) for p in procs):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL)
    return True
