"""Logging for the services: one line per record on stderr (systemd/journald and containers read it)."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    set_level(level)


def set_level(level: str) -> None:
    logging.getLogger().setLevel(level.upper())
    # Per-request access lines and HTTP/2 frame chatter stay quiet below DEBUG.
    quiet = logging.WARNING if level.upper() != "DEBUG" else logging.DEBUG
    for name in ("uvicorn.access", "hpack", "h2"):
        logging.getLogger(name).setLevel(quiet)
