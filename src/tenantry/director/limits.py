"""Counters that bound what a client may cost the Director before it has proven anything."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from tenantry.director.errors import DirectorError

if TYPE_CHECKING:
    from tenantry.director.store.db import Database


class AttemptLimiter:
    """Attempts per key in a sliding window, counted *before* the expensive work.

    ``begin`` records an attempt and refuses once ``limit`` are in the window, so parallel
    attempts are capped exactly (none can slip past a check that only counts finished
    failures).  ``succeeded`` takes a successful attempt back out of the count.
    """

    def __init__(self, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def _trim(self, key: str, now: float) -> deque[float]:
        hits = self._hits[key]
        while hits and hits[0] < now - self.window:
            hits.popleft()
        return hits

    def begin(self, key: str, limit: int) -> float:
        """Record an attempt: 0 when allowed, else the seconds until ``key`` may try again."""
        now = self._clock()
        hits = self._trim(key, now)
        if len(hits) >= limit:
            return max(0.1, hits[0] + self.window - now)
        hits.append(now)
        if len(self._hits) > 100_000:  # bound memory under a spray of source addresses
            del self._hits[next(iter(self._hits))]
        return 0.0

    def succeeded(self, key: str) -> None:
        hits = self._hits.get(key)
        if hits:
            hits.pop()
            if not hits:
                del self._hits[key]


class Slots:
    """At most ``limit()`` holders at once, at most ``queue`` waiting; past that: HTTP 429 at once.

    Keeps CPU-heavy work of one kind (Argon2id for enrollment attempts) from queueing without
    bound or taking the slots of another kind (admin calls have their own ``Slots``).
    """

    def __init__(self, limit: Callable[[], int], queue: int, what: str) -> None:
        self._limit = limit
        self._queue = queue
        self._what = what
        self._busy = 0
        self._waiting = 0
        self._cond = asyncio.Condition()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        async with self._cond:
            if self._busy >= self._limit():
                if self._waiting >= self._queue:
                    raise DirectorError(429, f"too many {self._what} in progress; retry in a few seconds")
                self._waiting += 1
                try:
                    await self._cond.wait_for(lambda: self._busy < self._limit())
                finally:
                    self._waiting -= 1
            self._busy += 1
        try:
            yield
        finally:
            async with self._cond:
                self._busy -= 1
                self._cond.notify()


class HandshakeWindow:
    """At most ``limit`` uplink handshakes in any one-second window, counted exactly.

    A handshake holds a slot from the moment its connection is admitted until one second
    after it ends (completed or failed).  So at every instant, handshakes in progress plus
    those that ended within the last second are at most ``limit``, and therefore neither
    the handshakes *started* nor those *completed* in any 1 s window can exceed it.

    (A token bucket on accepted connections, the earlier rule, bounds only the accepts: on a
    loaded machine handshakes admitted over several seconds completed in one burst, 262 in
    one second against a limit of 200.)
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._ended: deque[float] = deque()  # end times within the last second
        self.in_progress = 0

    def _trim(self, now: float) -> None:
        ended = self._ended
        while ended and ended[0] <= now - 1.0:
            ended.popleft()

    def held(self) -> int:
        """Slots held now (in progress plus ended within the last second)."""
        self._trim(self._clock())
        return self.in_progress + len(self._ended)

    def admit(self, limit: int) -> bool:
        if self.held() >= limit:
            return False
        self.in_progress += 1
        return True

    def ended(self) -> None:
        """An admitted handshake completed or failed: its slot frees one second from now."""
        self.in_progress -= 1
        self._ended.append(self._clock())


class SharedAttemptLimiter:
    """:class:`AttemptLimiter` counted in the database, so the limit holds across every Director.

    Each key has a row in ``attempt_keys`` that the check updates first: on PostgreSQL that row
    lock makes concurrent checks of one key (on any Director) take turns; on SQLite the write
    transaction does the same.  Old attempts are pruned as they are counted.
    """

    def __init__(self, db: Database, window: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self.window = window
        self._clock = clock
        # The newest attempt ids this process recorded, per key (what succeeded() takes back out).
        self._mine: dict[str, deque[int]] = {}
        self._pruned_at = 0.0

    def begin(self, key: str, limit: int) -> float:
        now = self._clock()
        db = self._db
        with db.tx():
            db.execute(
                "INSERT INTO attempt_keys (key, touched_at) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET touched_at = excluded.touched_at",
                (key, now),
            )
            db.execute("DELETE FROM attempts WHERE key = ? AND at < ?", (key, now - self.window))
            row = db.row("SELECT COUNT(*), MIN(at) FROM attempts WHERE key = ?", (key,))
            count, oldest = (int(row[0]), row[1]) if row else (0, None)
            if count >= limit:
                return max(0.1, float(oldest or now) + self.window - now)
            attempt = db.insert("INSERT INTO attempts (key, at) VALUES (?, ?)", (key, now))
        self._mine.setdefault(key, deque(maxlen=64)).append(attempt)
        if len(self._mine) > 10_000:  # bound memory under a spray of source addresses
            del self._mine[next(iter(self._mine))]
        if now - self._pruned_at > self.window:  # keys nobody tried for a while
            self._pruned_at = now
            db.execute("DELETE FROM attempt_keys WHERE touched_at < ?", (now - self.window,))
            db.execute("DELETE FROM attempts WHERE at < ?", (now - self.window,))
        return 0.0

    def succeeded(self, key: str) -> None:
        ids = self._mine.get(key)
        if ids:
            self._db.execute("DELETE FROM attempts WHERE id = ?", (ids.pop(),))
            if not ids:
                del self._mine[key]
