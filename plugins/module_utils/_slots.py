# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""A counting semaphore shared by every process on this machine: at most N holders at once.

It is a folder of N slot files; holding a slot is holding an exclusive ``flock`` on its file.
The kernel frees a slot when its holder closes it or dies (even by SIGKILL), so a killed run
never leaks one.  To take a slot: try every slot without waiting (starting at a random one);
when all are taken, wait on one chosen at random.  With many waiters every slot has some and
a freed slot is taken at once; with few, a freed slot that nobody waits on is found by the
next try (every release is followed by the releasing thread's next try).

Each holder opens its own descriptor (``flock`` belongs to the open file, so two threads of one
process sharing a descriptor would share the lock).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import random
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

    def acquire(self) -> int:
        """Take a slot (waiting while all are taken); returns the descriptor that holds it."""
        first = random.randrange(self.count)
        for index in range(self.count):
            fd = os.open(self.paths[(first + index) % self.count], os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
        fd = os.open(random.choice(self.paths), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # the GIL is released while waiting
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def release(fd: int | None) -> None:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing releases the flock

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        fd = self.acquire()
        try:
            yield
        finally:
            self.release(fd)
