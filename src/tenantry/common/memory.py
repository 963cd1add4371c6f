"""glibc malloc tuning for the services: freed memory goes back to the operating system.

No effect (and no error) on other C libraries.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import gc
import os
from typing import Any


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt  # noqa: B018 - glibc only
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


#: Allocations from this size on are mmapped and go back to the OS when freed: Argon2id's work area
#: (19 MiB by default) is, the services' streaming buffers (1 MiB HTTP/2 frames, 4 MiB disk segments,
#: h11's receive buffer) are not.
MMAP_THRESHOLD = 16 << 20
#: Free memory at the top of the heap kept for the next allocations instead of being handed back.
TRIM_THRESHOLD = 64 << 20


def tune_malloc() -> None:
    """Fix glibc's mmap threshold at 16 MiB and its trim threshold at 64 MiB.

    By default glibc raises the mmap threshold after the first large free, and every later
    Argon2id buffer (19 MiB) then stays in a per-thread arena: a few hundred MiB of RSS after
    many tenant creations or enrollments.  Fixed at 16 MiB, those still go back when freed.
    It must not be lower than the buffers that stream data: at 1 MiB every HTTP/2 frame of a
    backup (and each copy of it) was a fresh ``mmap`` whose pages the kernel faulted in and
    zeroed, then unmapped (about 0.9 CPU-seconds per GiB allocated in this VM against 0.03 from
    the heap).  Setting the threshold also stops glibc's dynamic trim threshold, whose default
    (128 KiB) would hand the heap's top back after each free and fault it in again: 64 MiB of it
    are kept (:func:`trim` still returns everything, after a crowd of connections has gone).
    """
    libc = _libc()
    if libc is not None:
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, MMAP_THRESHOLD)
        libc.mallopt(m_trim_threshold, TRIM_THRESHOLD)


#: The largest single ``write`` into a file (see :func:`write_file`).
FILE_WRITE = 256 << 10


def write_file(fd: int, data: bytes | bytearray | memoryview, piece: int = FILE_WRITE) -> None:
    """Write all of ``data`` to ``fd`` in pieces of at most ``piece`` bytes (256 KiB).

    The kernel (6.x, ext4's large folios) gives a file's page cache folios as large as each write:
    a 4 MiB write takes 2 MiB folios, which come from the 2 MiB blocks a VM's guest hands back to its
    host (free page reporting), and the host faults every page of them in again.  In the lab's VM, new
    files cost 3.06 CPU-seconds per GiB in 4 MiB writes, 3.16 in 2 MiB, 0.36 in 1 MiB and 0.32 in 256 KiB
    writes (2 GiB, ``tests/bench/backups/bench_page_cache.py --mib 2048 --sweep``); at 4 GiB, 1 MiB writes
    cost 0.77 and 256 KiB 0.48.  On bare metal the pieces cost a few more system calls, nothing else.
    """
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[:piece]) :]


def trim() -> None:
    """Hand free heap pages back to the OS (``malloc_trim(0)``)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


class Reclaimer:
    """Trims the heap once after a crowd of connections has gone (say, an attack that ended).

    ``track(active)`` is called when a connection closes; when ``active`` has fallen below
    half of the peak seen since the last trim (and that peak was at least ``threshold``),
    one full garbage collection and one ``malloc_trim`` run a second later.
    """

    def __init__(self, threshold: int = 256, delay: float = 1.0) -> None:
        self.threshold = threshold
        self.delay = delay
        self._peak = 0
        self._pending: asyncio.TimerHandle | None = None
        self.trims = 0

    def track(self, active: int) -> None:
        self._peak = max(self._peak, active)
        if self._peak >= self.threshold and active <= self._peak // 2 and self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(self.delay, self._trim)

    def _trim(self) -> None:
        self._pending = None
        self._peak = 0
        # Connections that lived a while reached the oldest GC generation, which is collected
        # rarely: collect now, or their memory would wait for the next full collection.
        gc.collect()
        trim()
        self.trims += 1
