"""Several Directors sharing one PostgreSQL database behind a load balancer.

No consensus of our own: PostgreSQL is the one source of truth, and this room only adds

* the **registry** (``registry.py``): every Director's heartbeat and peer address, and which
  Director holds each tenant's uplink session (the newest session wins);
* the **bus** (``bus.py``): LISTEN/NOTIFY for what every Director must act on at once
  (settings changed, tenant revoked or superseded, sessions claimed elsewhere), with a full
  re-read of that state whenever the listening connection (re)connects;
* **forwarding** (``forward.py``): a request that needs a session held elsewhere is served by
  an authenticated HTTPS call to that Director's peer port.

The Director composes it (``service.py``) and gives it the callbacks that act on its own
sessions; nothing here reaches into the Director object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tenantry.director.cluster.bus import CHANNEL, Bus
from tenantry.director.cluster.registry import DEAD_AFTER, HEARTBEAT, Peer, Registry, RemoteSession
from tenantry.director.store import Store

__all__ = ["Cluster", "Handlers", "Peer", "RemoteSession"]

log = logging.getLogger(__name__)

SWEEP_EVERY = 30.0


@dataclass
class Handlers:
    """What the Director does when the cluster tells it something."""

    settings_changed: Callable[[], None]
    tenant_closed: Callable[[str, str], None]  # tenant id, why ("revoked", "superseded")
    sessions_claimed: Callable[[list[tuple[str, float]]], None]  # (tenant id, connected_at) newer elsewhere
    resync: Callable[[], None]
    local_sessions: Callable[[], int]


class Cluster:
    def __init__(
        self,
        store: Store,
        *,
        director_id: str,
        name: str,
        peer_url: str,
        version: str,
        conninfo: str,
        handlers: Handlers,
    ) -> None:
        self.store = store
        self.id = director_id
        self.name = name
        self.peer_url = peer_url
        self.version = version
        self.registry = Registry(store, director_id)
        self.handlers = handlers
        self.bus = Bus(conninfo, director_id, self._notify, self._on_message, handlers.resync)
        self._peers: dict[str, Peer] = {}
        self._claims: list[tuple[str, float]] = []
        self._snapshot: tuple[float, dict[str, RemoteSession]] = (0.0, {})
        self._beat_ok_at = 0.0
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ life
    def register(self) -> None:
        self.registry.register(self.name, self.peer_url, self.version)
        self._beat_ok_at = time.monotonic()
        self._refresh_peers()

    def start(self) -> None:
        self.bus.start()
        self._task = asyncio.get_running_loop().create_task(self._beat_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.bus.stop()
        try:
            self.registry.deregister()
        except Exception as exc:
            log.warning("cluster: could not deregister: %s", exc)

    @property
    def healthy(self) -> bool:
        """This Director's heartbeat reached the database recently (else the others consider it dead)."""
        return time.monotonic() - self._beat_ok_at < DEAD_AFTER / 2

    async def _beat_forever(self) -> None:
        last_reap = last_sweep = time.monotonic()
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                self.registry.heartbeat(self.handlers.local_sessions())
                self._beat_ok_at = time.monotonic()
                self._refresh_peers()
                if time.monotonic() - last_reap > DEAD_AFTER:
                    last_reap = time.monotonic()
                    gone = self.registry.reap()
                    if gone:
                        log.info("cluster: forgot %d session(s) of Directors that stopped answering", gone)
                if time.monotonic() - last_sweep > SWEEP_EVERY:
                    last_sweep = time.monotonic()
                    self.handlers.resync()  # a backstop for notifications lost while nobody listened
            except Exception as exc:
                log.warning("cluster: heartbeat failed: %s", exc)

    def _refresh_peers(self) -> None:
        self._peers = {p.id: p for p in self.registry.directors()}

    # ------------------------------------------------------------------ peers
    def peers(self) -> list[Peer]:
        return list(self._peers.values())

    def alive(self) -> list[Peer]:
        return [p for p in self._peers.values() if self.registry.alive(p)]

    def peer_address(self, director_id: str) -> str | None:
        """The peer URL of a live Director (``None`` when it is gone)."""
        peer = self._peers.get(director_id)
        if peer is None or director_id == self.id:
            self._refresh_peers()
            peer = self._peers.get(director_id)
        if peer is None or peer.id == self.id or not self.registry.alive(peer):
            return None
        return peer.peer_url

    # ------------------------------------------------------------------ sessions
    def claim(self, tenant_id: str, connected_at: float, address: str) -> None:
        self.registry.claim_later(tenant_id, connected_at, address)
        self._claims.append((tenant_id, connected_at))

    def release(self, tenant_id: str, connected_at: float) -> None:
        self.registry.release_later(tenant_id, connected_at)

    def site_info(self, tenant_id: str, version: str, hostname: str) -> None:
        self.registry.site_info_later(tenant_id, version, hostname)

    def after_flush(self) -> None:
        """The claims just written are announced, so an older session elsewhere closes."""
        claims, self._claims = self._claims, []
        if claims:
            self.bus.publish_many("claimed", "sessions", [[t, c] for t, c in claims])

    def owner(self, tenant_id: str) -> str | None:
        """The live *other* Director holding the tenant's session, if any."""
        found = self.registry.sessions_elsewhere([tenant_id]).get(tenant_id)
        return found.director_id if found else None

    def sessions_elsewhere(self, tenant_ids: list[str] | None = None) -> dict[str, RemoteSession]:
        """Sessions on other live Directors; all of them cached for a second (status pages ask per tenant)."""
        if tenant_ids is not None and len(tenant_ids) <= 500:
            return self.registry.sessions_elsewhere(tenant_ids)
        at, snapshot = self._snapshot
        if time.monotonic() - at > 1.0:
            snapshot = self.registry.sessions_elsewhere()
            self._snapshot = (time.monotonic(), snapshot)
        return snapshot

    def online_count(self) -> int:
        return self.registry.online_count()

    def online_elsewhere_ids(self) -> set[str]:
        return self.registry.online_elsewhere_ids()

    # ------------------------------------------------------------------ messages
    def announce(self, kind: str, **data: Any) -> None:
        """Tell every other Director (on commit, when called inside a transaction)."""
        self.bus.publish(kind, **data)

    def _notify(self, payload: str) -> None:
        self.store.db.execute("SELECT pg_notify(?, ?)", (CHANNEL, payload))

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("kind")
        if kind == "settings":
            self.handlers.settings_changed()
        elif kind in ("revoked", "superseded") and isinstance(message.get("tenant"), str):
            self.handlers.tenant_closed(str(message["tenant"]), str(kind))
        elif kind == "claimed" and isinstance(message.get("sessions"), list):
            claims = [
                (str(item[0]), float(item[1]))
                for item in message["sessions"]
                if isinstance(item, list) and len(item) == 2 and isinstance(item[1], int | float)
            ]
            self.handlers.sessions_claimed(claims)
        else:
            log.debug("cluster: ignored message %r", kind)
