"""The uplink's "come back later" line: what an admission refusal tells the Transporter.

A Director over its handshake budget refuses a connection before TLS.  A bare close makes
every refused Transporter guess with exponential backoff, so thousands of them retry in
clumps and the last ones wait a whole backoff cap after the Director could have taken
them.  Instead the Director writes one short plain-text line before closing, which tells
the Transporter when to come back, spreading the crowd over the time the Director needs::

    tenantry-busy retry-after=12.5\\n

It is not TLS (no TLS record starts with ``t``), so an older Transporter simply sees a failed
handshake and backs off as before.  The line is unauthenticated: it can only make a
Transporter wait, never longer than its own backoff cap, which anyone able to drop its
connections could do anyway.
"""

from __future__ import annotations

PREFIX = b"tenantry-busy retry-after="
_MAX_LINE = 64


def encode(retry_after: float) -> bytes:
    return PREFIX + f"{max(0.0, retry_after):.1f}\n".encode()


def parse(data: bytes) -> float | None:
    """The retry delay from the first bytes a server sent, or ``None`` when they are not a busy line."""
    if not data.startswith(PREFIX):
        return None
    line = data[len(PREFIX) : _MAX_LINE].split(b"\n", 1)[0]
    try:
        value = float(line)
    except ValueError:
        return None
    if value != value or value < 0 or value > 86400:  # NaN or absurd: not believed
        return None
    return value
