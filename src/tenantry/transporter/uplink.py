"""The uplink: keep one mutual-TLS session to the Director, forever.

Reconnects use full-jitter exponential backoff (base ``backoff_base`` = 1 s,
cap from the Expert Setting ``reconnect_backoff_cap``); the attempt counter is
reset only after a session that *lived* (stayed up for at least
``max(10 s, heartbeat_misses * heartbeat_interval)``), so a Director that
accepts and then drops us at once cannot make us hammer it.  When a connect
fails, the Transporter asks the setup port which uplink port is current (the
Director may have moved it while we were away).  Nothing accumulates while
the Director is away: one loop, one socket at a time.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
import urllib.parse
from collections.abc import Callable
from functools import partial

from tenantry.protocol import tls
from tenantry.protocol.backoff import Backoff
from tenantry.protocol.channel import Channel, ChannelClosed, ChannelLimits
from tenantry.protocol.messages import TransporterSettings
from tenantry.transporter.config import State, StateDir
from tenantry.transporter.enroll import EnrollError, fetch_info
from tenantry.transporter.site import Guard, Site

log = logging.getLogger(__name__)

# Mirrors of tenantry.director.uplink's GOAWAY texts (kept here: the Transporter never imports the Director).
GOAWAY_RESTART = b"director restarting: reconnect"
GOAWAY_MOVED = b"uplink moved: reconnect"
GOAWAY_REPLACED = b"session replaced by a newer one"


ASK_AFTER_REFUSALS = 3
ASK_INTERVAL = 60.0


class DirectorBusy(ConnectionError):
    """The Director refused the connection before TLS (admission limit) and said when to come back."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Director busy: retry in {retry_after:g} s")
        self.retry_after = retry_after


class UplinkClient:
    def __init__(
        self,
        state_dir: StateDir,
        state: State,
        site: Site,
        *,
        backoff_base: float = 1.0,
        rng: random.Random | None = None,
        on_state: Callable[[str], None] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.state = state
        self.site = site
        self.backoff = Backoff(backoff_base, state.settings.reconnect_backoff_cap, rng)
        self._rng = rng or random.Random()
        self.channel: Channel | None = None
        self.connected = asyncio.Event()
        self.sessions = 0  # sessions established so far (tests and benchmarks read it)
        self._move = False
        self._retry_after: float | None = None  # the Director's busy hint for the next attempt
        self._refused = 0  # connects refused in a row (nothing listening on the uplink port)
        self._asked_at = -1e9  # when we last asked the setup port for the current uplink port
        self._ctx: tuple[tuple[tuple[int, int, int], ...], ssl.SSLContext] | None = None
        self._on_state = on_state
        self._stop = asyncio.Event()
        url = urllib.parse.urlsplit(state.director_url)
        self.host = url.hostname or "localhost"
        site.on_settings = self._settings_changed

    @property
    def settings(self) -> TransporterSettings:
        return self.state.settings

    # ------------------------------------------------------------------ settings from the Director
    def _settings_changed(self, new: TransporterSettings) -> None:
        old = self.state.settings
        self.state = self.state.model_copy(update={"settings": new})
        self.backoff.cap = new.reconnect_backoff_cap
        if new != old:
            try:
                self.state_dir.save(self.state)
            except OSError as exc:
                log.warning("cannot save settings to %s: %s", self.state_dir.state_file, exc)
        if (new.uplink_port, new.setup_port) != (old.uplink_port, old.setup_port) and self.channel is not None:
            log.info("Director moved the uplink to port %d; reconnecting there", new.uplink_port)
            self._move = True
            channel = self.channel
            # Let the answer to this PUT leave first.
            asyncio.get_running_loop().call_later(0.05, channel.close, "uplink port moved")

    # ------------------------------------------------------------------ main loop
    def stop(self) -> None:
        self._stop.set()
        if self.channel is not None:
            self.channel.close("transporter stopping")

    async def run_forever(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            reason = await self._one_session()
            if self._stop.is_set():
                return
            lived = time.monotonic() - started
            if self.channel is not None and lived >= self._lived_threshold():
                self.backoff.reset()
            self.channel = None
            if self._move:
                self._move = False
                self.backoff.reset()
                delay = self._rng.uniform(0, min(2.0, self.settings.reconnect_backoff_cap))
            elif self._retry_after is not None:
                # The Director said when it can take us: come back then (never later than our cap),
                # instead of guessing with a longer backoff.
                delay = min(self._retry_after, self.settings.reconnect_backoff_cap)
                self._retry_after = None
            else:
                delay = self.backoff.next_delay()
            log.info("uplink down (%s); reconnecting in %.1f s", reason, delay)
            if self._on_state:
                self._on_state("offline")
            try:
                await asyncio.wait_for(self._stop.wait(), delay)
                return
            except TimeoutError:
                pass

    def _lived_threshold(self) -> float:
        s = self.settings
        # Production: at least 10 s; the tests' sub-second heartbeats scale it down.
        return min(max(10.0, s.heartbeat_interval * s.heartbeat_misses), 10 * s.heartbeat_interval)

    async def _one_session(self) -> str:
        try:
            channel = await self._connect()
        except ConnectionRefusedError as exc:
            # Nothing listens there: the Director is down, or it moved the uplink port while we were away.
            # Ask only after a few refusals in a row and at most once a minute: a Director that merely
            # restarts must not be met by every Transporter's HTTPS request at once.
            self._refused += 1
            if self._refused >= ASK_AFTER_REFUSALS and time.monotonic() - self._asked_at >= ASK_INTERVAL:
                self._asked_at = time.monotonic()
                await self._maybe_port_moved()
            return f"connect failed: {exc}"
        except DirectorBusy as exc:
            self._retry_after = exc.retry_after
            return str(exc)
        except (OSError, TimeoutError, ChannelClosed) as exc:
            return f"connect failed: {exc}"
        self._refused = 0
        self.channel = channel
        self.sessions += 1
        self.connected.set()
        if self._on_state:
            self._on_state("online")
        log.info("uplink session up to %s:%d", self.host, self.settings.uplink_port)
        try:
            await self._heartbeat(channel)
        finally:
            self.connected.clear()
        reason = channel.close_reason or "closed"
        if channel.goaway_data.startswith(b"refused"):
            log.error("the Director refused this Transporter: %s", channel.goaway_data.decode(errors="replace"))
        return reason

    def context(self) -> ssl.SSLContext:
        """The TLS context, loaded again only when the CA, certificate or key file changed (renewal).

        Loading them costs several milliseconds of OpenSSL work: not something to repeat on every
        attempt of a reconnect storm.
        """
        sd = self.state_dir
        stamp = tuple((st.st_ino, st.st_mtime_ns, st.st_size) for st in (p.stat() for p in (sd.ca, sd.cert, sd.key)))
        if self._ctx is None or self._ctx[0] != stamp:
            self._ctx = (stamp, tls.client_context(ca=sd.ca, cert=sd.cert, key=sd.key))
        return self._ctx[1]

    async def _connect(self) -> Channel:
        s = self.settings
        ctx = self.context()
        limits = ChannelLimits(
            max_frame_size=1 << 20,  # tunnel bytes from the Director arrive in few, large frames
            max_concurrent_streams=max(100, s.max_concurrent_tasks + 50),
            stream_window=4 << 20,
            connection_window=16 << 20,
        )
        guard = Guard(kind="uplink")
        loop = asyncio.get_running_loop()
        made: list[Channel] = []

        def factory() -> Channel:
            made.append(
                Channel(
                    ctx,
                    server_side=False,
                    h2_client=False,
                    server_hostname=self.host,
                    limits=limits,
                    handler=partial(self.site.handle, guard=guard),
                )
            )
            return made[-1]

        try:
            async with asyncio.timeout(limits.handshake_timeout + 5):
                _t, channel = await loop.create_connection(factory, self.host, s.uplink_port)
                await channel.ready
        except ChannelClosed:
            if made and made[-1].busy_retry_after is not None:
                raise DirectorBusy(made[-1].busy_retry_after) from None
            raise
        return channel

    async def _heartbeat(self, channel: Channel) -> None:
        while not channel.closed.done():
            s = self.settings
            try:
                await asyncio.wait_for(asyncio.shield(channel.closed), s.heartbeat_interval)
                return
            except TimeoutError:
                pass
            dead_after = s.heartbeat_interval * s.heartbeat_misses
            if channel.silent_for() > dead_after:
                channel.abort(f"Director silent for {dead_after:g} s ({s.heartbeat_misses} heartbeats missed)")
                return
            channel.ping()

    async def _maybe_port_moved(self) -> None:
        """Ask the setup port for the current uplink port (cheap when the Director is down: refused)."""
        try:
            info = await asyncio.to_thread(fetch_info, self.state.director_url, self.state_dir.ca, 5)
        except EnrollError:
            return
        port = info.get("uplink_port")
        if isinstance(port, int) and port != self.settings.uplink_port:
            log.info("the Director's uplink port is now %d (was %d)", port, self.settings.uplink_port)
            new = self.settings.model_copy(update={"uplink_port": port})
            self.state = self.state.model_copy(update={"settings": new})
            self.state_dir.save(self.state)
            self._move = True
