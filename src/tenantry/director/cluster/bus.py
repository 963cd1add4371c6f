"""What every Director must hear at once: PostgreSQL LISTEN/NOTIFY on one channel.

Used for invalidations only — settings changed, a tenant revoked or superseded, sessions
claimed by a newer connection elsewhere — never for requests (no answers, 8,000-byte
payloads, no streams: forwarding is an HTTPS call between Directors, see ``forward.py``).
A notification sent inside a transaction is delivered when it commits, so the state it
announces is already there for the receivers to read.

NOTIFY is fire-and-forget: a Director whose listening connection was down misses what was
said meanwhile.  So every (re)connection calls ``on_resync``, which reads the state itself
(settings, revocations, claims) instead of trusting that nothing happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

CHANNEL = "tenantry_cluster"
MAX_PAYLOAD = 7900  # PostgreSQL's limit is 8000 bytes


class Bus:
    def __init__(
        self,
        conninfo: str,
        director_id: str,
        send: Callable[[str], None],
        on_message: Callable[[dict[str, Any]], None],
        on_resync: Callable[[], None],
    ) -> None:
        self._conninfo = conninfo
        self.director_id = director_id
        self._send = send  # runs NOTIFY on the store's connection (inside its transaction, if any)
        self._on_message = on_message
        self._on_resync = on_resync
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.received = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._listen_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # ------------------------------------------------------------------ sending
    def publish(self, kind: str, **data: Any) -> None:
        """Tell every other Director (delivered on commit when called inside a transaction)."""
        payload = json.dumps({"kind": kind, "from": self.director_id, **data}, separators=(",", ":"))
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(f"cluster message {kind!r} too large ({len(payload)} bytes)")
        self._send(payload)

    def publish_many(self, kind: str, key: str, items: list[Any]) -> None:
        """``items`` under ``key``, in as many messages as the payload limit needs."""
        chunk: list[Any] = []
        size = 0
        for item in items:
            length = len(json.dumps(item)) + 1
            if chunk and size + length > MAX_PAYLOAD - 200:
                self.publish(kind, **{key: chunk})
                chunk, size = [], 0
            chunk.append(item)
            size += length
        if chunk:
            self.publish(kind, **{key: chunk})

    # ------------------------------------------------------------------ listening
    async def _listen_forever(self) -> None:
        # Only with PostgreSQL (the ``postgres`` extra): a Director on SQLite never imports it.
        import psycopg  # pylint: disable=import-outside-toplevel

        delay = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    delay = 0.5
                    log.info("cluster: listening for other Directors")
                    self._resync()
                    async for note in conn.notifies():
                        self._dispatch(note.payload)
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                if self.connected.is_set():
                    log.warning("cluster: lost the notification connection (%s); reconnecting", exc)
            self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(10.0, delay * 2)

    def _resync(self) -> None:
        try:
            self._on_resync()
        except Exception:
            log.exception("cluster: resynchronising after (re)connecting failed")

    def _dispatch(self, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            log.warning("cluster: ignored a malformed notification")
            return
        if not isinstance(message, dict) or message.get("from") == self.director_id:
            return
        self.received += 1
        try:
            self._on_message(message)
        except Exception:
            log.exception("cluster: handling %r failed", message.get("kind"))
