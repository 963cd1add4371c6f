"""Logging for the services: one line per record on stderr (systemd/journald and containers read it)."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Control characters (newlines above all) and Unicode line breaks in a message are written as
# escapes: a value a peer sent can never start a log line of its own.
_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F]} | {c: f"\\u{c:04x}" for c in (0x85, 0x2028, 0x2029)}


def escape(text: str) -> str:
    return text.translate(_ESCAPES)


class OneLineFormatter(logging.Formatter):
    """Every record's message on one line; a traceback (exc_info) still follows it."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)
        return super().formatMessage(record)


def setup_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter(LOG_FORMAT))
    root.addHandler(handler)
    set_level(level)


def set_level(level: str) -> None:
    logging.getLogger().setLevel(level.upper())
    # Per-request access lines and HTTP/2 frame chatter stay quiet below DEBUG.
    quiet = logging.WARNING if level.upper() != "DEBUG" else logging.DEBUG
    for name in ("uvicorn.access", "hpack", "h2"):
        logging.getLogger(name).setLevel(quiet)
