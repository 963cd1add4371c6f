"""``tenantry-transporter enroll|run`` / ``python -m tenantry.transporter``: foreground, logs to stderr."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from tenantry.common.logsetup import setup_logging
from tenantry.protocol.enrollment import EnrollmentKey
from tenantry.transporter.config import ENV_PREFIX, ConfigError, StateDir, TransporterConfig, load_config
from tenantry.transporter.enroll import EnrollError, enroll

log = logging.getLogger("tenantry.transporter")


def _enrollment_key(args: object) -> EnrollmentKey:
    path = getattr(args, "enrollment_key_file", None)
    text = getattr(args, "enrollment_key", None)
    if path is not None:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    text = text or os.environ.get(ENV_PREFIX + "ENROLLMENT_KEY")
    if not text:
        raise ConfigError(f"enroll needs --enrollment-key-file, --enrollment-key or {ENV_PREFIX}ENROLLMENT_KEY")
    try:
        return EnrollmentKey.decode(text)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


async def _enroll(config: TransporterConfig, key: EnrollmentKey) -> None:
    state = await enroll(StateDir(config.state_dir), key, config.director_url)
    log.info(
        "enrolled as tenant %s with %s; uplink port %d", state.tenant_id, state.director_url, state.settings.uplink_port
    )


async def _run(config: TransporterConfig) -> None:
    from tenantry.transporter.service import Transporter

    await Transporter(config).run()


def main(argv: list[str] | None = None) -> int:
    try:
        command, config, args = load_config(argv)
        setup_logging(config.log_level)
        if command == "enroll":
            asyncio.run(_enroll(config, _enrollment_key(args)))
        else:
            asyncio.run(_run(config))
    except ConfigError as exc:
        print(f"tenantry-transporter: {exc}", file=sys.stderr)
        return 2
    except EnrollError as exc:
        print(f"tenantry-transporter: enrollment failed: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"tenantry-transporter: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
