# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""A counting semaphore shared by every process on this machine: at most N holders at once.

It is a folder of N slot files; holding a slot is holding an exclusive ``flock`` on its file.
The kernel frees a slot when its holder dies (even by SIGKILL), so a killed run never leaks one.
To take a slot: try every slot without waiting (starting at a random one); when all are taken,
wait on one chosen at random.  With many waiters every slot has some and a freed slot is taken
at once; with few, a freed slot that nobody waits on is found by the next try (every release is
followed by the releasing thread's next try).

A process opens each slot file once.  ``flock`` belongs to the open file, so the threads of one
process take a slot's thread lock first: no two of them ever hold, or wait on, one descriptor.
Taking and freeing a slot is then one ``flock`` call each.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path


class Slots:
    """``count`` slots in ``folder`` (created as needed); ``hold()`` waits for one and keeps it."""

    def __init__(self, folder: str | Path, count: int) -> None:
        if count < 1:
            raise ValueError("a semaphore needs at least one slot")
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.count = count
        self.paths = [str(self.folder / ("slot-%04d" % i)) for i in range(count)]
        self._fds: list[int | None] = [None] * count
        self._mine = [threading.Lock() for _index in range(count)]  # held while a thread of ours has the slot
        self._opening = threading.Lock()

    def _fd(self, index: int) -> int:
        fd = self._fds[index]
        if fd is None:
            with self._opening:
                fd = self._fds[index]
                if fd is None:
                    fd = self._fds[index] = os.open(self.paths[index], os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return fd

    def acquire(self) -> int:
        """Take a slot (waiting while all are taken); returns its number, for ``release``."""
        first = random.randrange(self.count)
        for step in range(self.count):
            index = (first + step) % self.count
            if not self._mine[index].acquire(blocking=False):
                continue  # another thread of this process has it
            try:
                fcntl.flock(self._fd(index), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return index
            except OSError as exc:
                self._mine[index].release()
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
        index = random.randrange(self.count)
        self._mine[index].acquire()  # waits for this process's holder (the GIL is released meanwhile)
        try:
            fcntl.flock(self._fd(index), fcntl.LOCK_EX)  # waits for other processes' holders
        except BaseException:
            self._mine[index].release()
            raise
        return index

    def release(self, index: int | None) -> None:
        if index is None:
            return
        try:
            fcntl.flock(self._fd(index), fcntl.LOCK_UN)
        finally:
            self._mine[index].release()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        index = self.acquire()
        try:
            yield
        finally:
            self.release(index)

    def close(self) -> None:
        """Close the slot files (releases any slot still held by this process)."""
        for index, fd in enumerate(self._fds):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
                self._fds[index] = None
