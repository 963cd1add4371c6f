"""The Transporter process: uplink session and/or Direct Connect listener until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from tenantry.transporter.config import ConfigError, StateDir, TransporterConfig
from tenantry.transporter.direct import DirectConnectServer
from tenantry.transporter.site import Site
from tenantry.transporter.uplink import UplinkClient

log = logging.getLogger(__name__)


class Transporter:
    def __init__(self, config: TransporterConfig) -> None:
        self.config = config
        self.state_dir = StateDir(config.state_dir)
        enrolled = self.state_dir.enrolled
        if config.uplink and not enrolled:
            raise ConfigError(
                f"not enrolled ({self.state_dir.path} has no credentials): run 'enroll' first, "
                "or run with --no-uplink for Direct Connect with a PSK"
            )
        if not config.uplink and not config.direct_connect.enabled:
            raise ConfigError("nothing to do: uplink disabled and Direct Connect not enabled")
        state = self.state_dir.load() if enrolled else None
        if state is not None and config.director_url:
            state = state.model_copy(update={"director_url": config.director_url})
        self.state = state
        self.site = Site(config, self.state_dir, state.tenant_id if state else "", state.settings if state else None)
        self.uplink = (
            UplinkClient(self.state_dir, state, self.site, backoff_base=config.backoff_base)
            if (state is not None and config.uplink)
            else None
        )
        self.direct = DirectConnectServer(config, self.state_dir, self.site) if config.direct_connect.enabled else None
        self.stopping = asyncio.Event()

    async def start(self) -> None:
        if self.direct is not None:
            await self.direct.start()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        await self.start()
        tasks: list[asyncio.Task[None]] = []
        if self.uplink is not None:
            tasks.append(loop.create_task(self.uplink.run_forever()))
        if self.config.backup.vsphere is not None:
            # Backup snapshots a killed Transporter left on its VMs are removed at start.
            tasks.append(loop.create_task(self._janitor()))
        await self.stopping.wait()
        log.info("stopping")
        if self.uplink is not None:
            self.uplink.stop()
        if self.direct is not None:
            self.direct.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _janitor(self) -> None:
        await self.site.jobs.janitor()
