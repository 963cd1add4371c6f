"""tenantry.common.proctree: a process tree is stopped whole, also what left its process group or session."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenantry.common import proctree

# A shell that starts a grandchild in a session of its own and one that ignores SIGTERM, prints their pids
# and waits; every one of them would outlive a signal to the first shell's process group.
TREE = """
setsid sh -c 'sleep 300' & echo $!
sh -c 'trap "" TERM; while :; do sleep 0.1; done' & echo $!
wait
"""


@pytest.fixture
def tree() -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    root = subprocess.Popen(["sh", "-c", TREE], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert root.stdout is not None
    pids = [root.pid, int(root.stdout.readline()), int(root.stdout.readline())]
    deadline = time.monotonic() + 10
    while sum(len(proctree.children().get(pid, [])) for pid in pids[1:]) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)  # the setsid'd sleep and the loop's first sleep have started
    try:
        yield root, pids
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        root.wait()


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_a_signal_to_the_group_misses_the_setsid_child(tree: tuple[subprocess.Popen[str], list[int]]) -> None:
    """Why the walk exists: what the runner did before."""
    root, (_sh, detached, _stubborn) = tree
    os.killpg(root.pid, signal.SIGTERM)
    root.wait()
    time.sleep(0.2)
    assert _running(detached)


def test_stop_tree_terms_then_kills_everything_below(tree: tuple[subprocess.Popen[str], list[int]]) -> None:
    root, pids = tree
    # The detached shell's `sleep 300` (the other loop's `sleep 0.1` come and go: one seen here may have
    # ended before the walk, and the walk stops the one running then).
    below = proctree.children().get(pids[1], [])
    signalled = asyncio.run(proctree.stop_tree(root.pid, grace=0.5, group=root.pid))
    assert below and set(pids) | set(below) <= set(signalled)
    root.wait()
    assert [pid for pid in [*pids, *below] if _running(pid)] == []


def test_stop_tree_cancelled_while_waiting_kills_at_once(tree: tuple[subprocess.Popen[str], list[int]]) -> None:
    root, pids = tree

    async def cancel_during_the_grace() -> None:
        task = asyncio.create_task(proctree.stop_tree(root.pid, grace=60, group=root.pid))
        await asyncio.sleep(0.5)  # the loop that ignores SIGTERM still runs
        assert _running(pids[2])
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_during_the_grace())
    root.wait()
    assert [pid for pid in pids if _running(pid)] == []


def test_kill_tree_kills_the_detached_child_too(tree: tuple[subprocess.Popen[str], list[int]]) -> None:
    root, pids = tree
    assert set(pids) <= set(proctree.kill_tree(root.pid))
    root.wait()
    deadline = time.monotonic() + 5
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [pid for pid in pids if _running(pid)] == []
