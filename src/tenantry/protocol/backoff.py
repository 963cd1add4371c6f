"""Full-jitter exponential backoff (AWS architecture blog, "Exponential Backoff And Jitter")."""

from __future__ import annotations

import random


class Backoff:
    """``sleep = uniform(0, min(cap, base * 2**attempt))``; the attempt counter only grows until reset."""

    def __init__(self, base: float = 1.0, cap: float = 60.0, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def ceiling(self) -> float:
        # 2**attempt overflows float for huge attempt counts; the cap wins long before.
        return float(min(self.cap, self.base * (2.0 ** min(self.attempt, 32))))

    def next_delay(self) -> float:
        delay = self._rng.uniform(0.0, self.ceiling())
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
