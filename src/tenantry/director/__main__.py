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
        director.peer_port = await peer.start(config.listen_host, config.peer_port)
        log.info("peer port %d: requests forwarded by other Directors (mutual TLS)", director.peer_port)
    director.started(await api.start(config.listen_host, director.settings.setup_port))
    await stopping.wait()
    await director.stop()
    await api.stop()
    if peer is not None:
        await peer.stop()
    director.close()


def init_only(config: DirectorConfig) -> None:
    """``--init-only``: create the state directory's CA, certificates and admin token, then exit.

    Several Directors share one CA and one admin token: the director role runs this on the first
    Director and copies those files to the others before their first start (no database needed).
    """
    from tenantry.director.authority import Authority
    from tenantry.director.service import ensure_admin_token

    config.state_dir.mkdir(parents=True, exist_ok=True)
    config.state_dir.chmod(0o700)
    Authority(config.state_dir, list(config.server_names))
    ensure_admin_token(config.admin_token_path)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    only_init = "--init-only" in args
    if only_init:
        args.remove("--init-only")
    try:
        config = load_config(args)
    except ConfigError as exc:
        print(f"tenantry-director: {exc}", file=sys.stderr)
        return 2
    if only_init:
        try:
            init_only(config)
        except (OSError, ValueError) as exc:
            print(f"tenantry-director: cannot initialise {config.state_dir}: {exc}", file=sys.stderr)
            return 1
        return 0
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
