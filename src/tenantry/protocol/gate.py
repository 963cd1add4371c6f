"""Admission for a listener: caps on connections in total and per source address, applied before TLS.

A refused connection is reset at once: no TLS state, no buffer, no timer.  When the total cap
is reached, a newcomer from a source holding fewer connections than another displaces that
other source's oldest *evictable* connection (one that has not proven anything or is idle),
so a flood from some addresses cannot lock every other address out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class Admitted(Protocol):
    """A connection the gate tracks."""

    source: str

    def evictable(self) -> bool: ...

    def evict(self) -> None: ...


@dataclass(frozen=True)
class GateLimits:
    total: int
    per_source: int


class ConnectionGate:
    def __init__(self, limits: Callable[[], GateLimits], exempt: Callable[[str], bool] | None = None) -> None:
        self._limits = limits
        self._exempt = exempt or (lambda _source: False)
        self._all: OrderedDict[Admitted, None] = OrderedDict()  # oldest first
        self._per_source: dict[str, int] = {}
        self.refused = 0
        self.evicted = 0
        self.peak = 0

    @property
    def active(self) -> int:
        return len(self._all)

    def connections(self) -> list[Admitted]:
        return list(self._all)

    def count(self, source: str) -> int:
        return self._per_source.get(source, 0)

    def admit(self, conn: Admitted) -> bool:
        """Track ``conn`` and return ``True``, or ``False`` when it must be refused."""
        limits = self._limits()
        mine = self.count(conn.source)
        if mine >= limits.per_source and not self._exempt(conn.source):
            self.refused += 1
            return False
        if len(self._all) >= limits.total and not self._evict_for(mine):
            self.refused += 1
            return False
        self._all[conn] = None
        self._per_source[conn.source] = mine + 1
        self.peak = max(self.peak, len(self._all))
        return True

    def release(self, conn: Admitted) -> None:
        if self._all.pop(conn, False) is not False:
            left = self._per_source[conn.source] - 1
            if left:
                self._per_source[conn.source] = left
            else:
                del self._per_source[conn.source]

    def _evict_for(self, newcomer_count: int) -> bool:
        """Make room for a source holding ``newcomer_count``: evict the oldest evictable connection of
        a source holding more (oldest first, so long floods lose their oldest connections first)."""
        for victim in self._all:
            if self.count(victim.source) > newcomer_count + 1 and victim.evictable():
                self.release(victim)
                victim.evict()
                self.evicted += 1
                return True
        return False
