"""Counters that bound what a client may cost the Director before it has proven anything."""

from __future__ import annotations

import time
from collections import defaultdict, deque


class RateLimiter:
    """Failures per key in a sliding window; checked before any expensive work."""

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def _trim(self, key: str, now: float) -> deque[float]:
        hits = self._hits[key]
        while hits and hits[0] < now - self.window:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return deque()
        return hits

    def blocked(self, key: str, limit: int) -> float:
        """Seconds until ``key`` may try again (0: allowed)."""
        now = time.monotonic()
        hits = self._trim(key, now)
        if len(hits) < limit:
            return 0.0
        return max(0.1, hits[0] + self.window - now)

    def fail(self, key: str) -> None:
        self._hits[key].append(time.monotonic())
        if len(self._hits) > 100_000:  # bound memory under a spray of source addresses
            oldest = next(iter(self._hits))
            del self._hits[oldest]
