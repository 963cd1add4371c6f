"""Slots shared across processes: never more holders than slots; a killed holder's slot comes back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.tenantry.msp.plugins.module_utils._slots import Slots

HOLDER = """
import sys, time
from ansible_collections.tenantry.msp.plugins.module_utils._slots import Slots
slots = Slots(sys.argv[1], int(sys.argv[2]))
fds = [slots.acquire() for _ in range(int(sys.argv[3]))]
print("held", flush=True)
time.sleep(60)
"""


def holder(folder: Path, count: int, take: int) -> subprocess.Popen[str]:
    """Another process that takes ``take`` of the ``count`` slots and keeps them."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder), str(count), str(take)],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_threads_never_hold_more_than_the_slots(tmp_path: Path) -> None:
    slots = Slots(tmp_path, 3)
    lock, now, peak = threading.Lock(), [0], [0]

    def work() -> None:
        for _ in range(5):
            with slots.hold():
                with lock:
                    now[0] += 1
                    peak[0] = max(peak[0], now[0])
                time.sleep(0.005)
                with lock:
                    now[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 3


def test_slots_are_shared_with_another_process_and_freed_when_it_is_killed(tmp_path: Path) -> None:
    other = holder(tmp_path, 2, 2)  # holds both
    slots = Slots(tmp_path, 2)
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(slots.acquire()))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive() and not got  # both taken: it waits
    os.kill(other.pid, signal.SIGKILL)  # the kernel releases the dead holder's locks
    other.wait()
    waiter.join(5)
    assert got, "the killed process's slot was not freed"
    slots.release(got[0])


def test_a_semaphore_needs_a_slot(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Slots(tmp_path, 0)
