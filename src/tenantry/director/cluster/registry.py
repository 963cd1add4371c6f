"""Who is alive and who holds which tenant's session: the cluster registry, in the shared database.

Plain portable SQL over the store (it runs on SQLite in tests as well).  Every Director writes
its own row in ``directors`` every :data:`HEARTBEAT` seconds; one that has not for
:data:`DEAD_AFTER` seconds is dead, its sessions no longer count and are removed after a while.
``tenant_sessions`` holds one row per connected tenant: the newest session wins, whichever
Director writes last (``connected_at``), so a tenant that moved is never listed twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tenantry.director.store import Store, in_list

HEARTBEAT = 2.0
DEAD_AFTER = 10.0
FORGET_AFTER = 60.0


@dataclass(frozen=True)
class Peer:
    id: str
    name: str
    peer_url: str
    heartbeat_at: float
    sessions: int
    started_at: float
    version: str


@dataclass(frozen=True)
class RemoteSession:
    tenant_id: str
    director_id: str
    connected_at: float
    address: str
    version: str | None
    hostname: str | None


_CLAIM = (
    "INSERT INTO tenant_sessions (tenant_id, director_id, connected_at, address) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (tenant_id) DO UPDATE SET director_id = excluded.director_id, "
    "connected_at = excluded.connected_at, address = excluded.address, version = NULL, hostname = NULL "
    "WHERE tenant_sessions.connected_at <= excluded.connected_at"
)
_RELEASE = "DELETE FROM tenant_sessions WHERE tenant_id = ? AND director_id = ? AND connected_at = ?"
_INFO = "UPDATE tenant_sessions SET version = ?, hostname = ? WHERE tenant_id = ? AND director_id = ?"


class Registry:
    def __init__(self, store: Store, director_id: str, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self.id = director_id
        self._clock = clock

    # ------------------------------------------------------------------ this Director
    def register(self, name: str, peer_url: str, version: str) -> None:
        """(Re)start: our row, and none of the sessions an earlier run of ours left behind."""
        now = self._clock()
        db = self._store.db
        with db.tx():
            db.execute(
                "INSERT INTO directors (id, name, peer_url, version, started_at, heartbeat_at, sessions) "
                "VALUES (?, ?, ?, ?, ?, ?, 0) ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
                "peer_url = excluded.peer_url, version = excluded.version, started_at = excluded.started_at, "
                "heartbeat_at = excluded.heartbeat_at, sessions = 0",
                (self.id, name, peer_url, version, now, now),
            )
            db.execute("DELETE FROM tenant_sessions WHERE director_id = ?", (self.id,))
            db.execute("DELETE FROM cluster_tunnels WHERE director_id = ?", (self.id,))

    def deregister(self) -> None:
        db = self._store.db
        with db.tx():
            db.execute("DELETE FROM tenant_sessions WHERE director_id = ?", (self.id,))
            db.execute("DELETE FROM cluster_tunnels WHERE director_id = ?", (self.id,))
            db.execute("DELETE FROM directors WHERE id = ?", (self.id,))

    def heartbeat(self, sessions: int) -> None:
        self._store.db.execute(
            "UPDATE directors SET heartbeat_at = ?, sessions = ? WHERE id = ?", (self._clock(), sessions, self.id)
        )

    def claim_later(self, tenant_id: str, connected_at: float, address: str) -> None:
        self._store.later(_CLAIM, (tenant_id, self.id, connected_at, address))

    def release_later(self, tenant_id: str, connected_at: float) -> None:
        self._store.later(_RELEASE, (tenant_id, self.id, connected_at))

    def site_info_later(self, tenant_id: str, version: str, hostname: str) -> None:
        self._store.later(_INFO, (version, hostname, tenant_id, self.id))

    # ------------------------------------------------------------------ the cluster
    def directors(self) -> list[Peer]:
        rows = self._store.db.rows(
            "SELECT id, name, peer_url, heartbeat_at, sessions, started_at, version FROM directors ORDER BY name"
        )
        return [Peer(r[0], r[1], r[2], float(r[3]), int(r[4]), float(r[5]), r[6]) for r in rows]

    def alive(self, peer: Peer) -> bool:
        return peer.heartbeat_at > self._clock() - DEAD_AFTER

    def sessions_elsewhere(self, tenant_ids: list[str] | None = None) -> dict[str, RemoteSession]:
        """Sessions held by *other* live Directors (all, or those of ``tenant_ids``)."""
        sql = (
            "SELECT s.tenant_id, s.director_id, s.connected_at, s.address, s.version, s.hostname "
            "FROM tenant_sessions s JOIN directors d ON d.id = s.director_id "
            "WHERE d.heartbeat_at > ? AND s.director_id != ?"
        )
        args: list[Any] = [self._clock() - DEAD_AFTER, self.id]
        if tenant_ids is not None:
            if not tenant_ids:
                return {}
            sql += f" AND {in_list('s.tenant_id', tenant_ids)}"
            args += tenant_ids
        return {r[0]: RemoteSession(r[0], r[1], float(r[2]), r[3], r[4], r[5]) for r in self._store.db.rows(sql, args)}

    def online_elsewhere_ids(self) -> set[str]:
        """The tenants whose session another live Director holds, revoked ones left out (one column)."""
        rows = self._store.db.rows(
            "SELECT s.tenant_id FROM tenant_sessions s JOIN directors d ON d.id = s.director_id "
            "JOIN tenants t ON t.id = s.tenant_id WHERE d.heartbeat_at > ? AND s.director_id != ? "
            "AND t.revoked_at IS NULL",
            (self._clock() - DEAD_AFTER, self.id),
        )
        return {str(r[0]) for r in rows}

    def online_count(self) -> int:
        """Tenants with a session on any live Director."""
        row = self._store.db.row(
            "SELECT COUNT(*) FROM tenant_sessions s JOIN directors d ON d.id = s.director_id WHERE d.heartbeat_at > ?",
            (self._clock() - DEAD_AFTER,),
        )
        return int(row[0]) if row else 0

    def reap(self) -> int:
        """Forget the sessions and tunnels of Directors dead for a while, then the Directors; how many sessions."""
        now = self._clock()
        db = self._store.db
        with db.tx():
            gone = db.execute(
                "DELETE FROM tenant_sessions WHERE director_id IN (SELECT id FROM directors WHERE heartbeat_at < ?)",
                (now - DEAD_AFTER * 2,),
            )
            db.execute(
                "DELETE FROM cluster_tunnels WHERE director_id IN (SELECT id FROM directors WHERE heartbeat_at < ?)",
                (now - DEAD_AFTER * 2,),
            )
            db.execute("DELETE FROM directors WHERE heartbeat_at < ?", (now - FORGET_AFTER,))
        return gone

    # ------------------------------------------------------------------ facts
    def agree(self, key: str, value: str) -> str:
        """Record ``value`` for ``key`` if the cluster has none yet; return what the cluster has."""
        db = self._store.db
        db.execute("INSERT INTO cluster_facts (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, value))
        row = db.row("SELECT value FROM cluster_facts WHERE key = ?", (key,))
        return str(row[0]) if row else value
