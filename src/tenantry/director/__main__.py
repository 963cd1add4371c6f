"""``tenantry-director`` / ``python -m tenantry.director``: runs in the foreground, logs to stderr."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from tenantry.common import memory
from tenantry.common.logsetup import set_level, setup_logging
from tenantry.director.config import ConfigError, DirectorConfig, load_config
from tenantry.director.settings import SettingsError

log = logging.getLogger("tenantry.director")


async def _run(config: DirectorConfig) -> None:
    """The Director and its API server, until SIGTERM or SIGINT."""
    from tenantry.director.api.server import ApiServer
    from tenantry.director.service import Director

    director = Director(config)
    set_level(config.log_level or director.settings.log_level)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await director.start()
    api = ApiServer(director)
    peer: ApiServer | None = None
    if director.cluster is not None:  # several Directors: the port the others forward requests to
        peer = ApiServer(director, peer=True)
        bound = await peer.start(config.listen_host, config.peer_port)
        log.info("peer port %d: requests forwarded by other Directors (mutual TLS)", bound)
    director.started(await api.start(config.listen_host, director.settings.setup_port))
    await stopping.wait()
    await director.stop()
    await api.stop()
    if peer is not None:
        await peer.stop()
    director.close()


def main(argv: list[str] | None = None) -> int:
    try:
        config = load_config(argv)
    except ConfigError as exc:
        print(f"tenantry-director: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.log_level or "INFO")
    memory.tune_malloc()
    try:
        asyncio.run(_run(config))
    except (SettingsError, ValueError, FileExistsError) as exc:
        log.error("cannot start: %s", exc)
        return 2
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
