"""The PROXY protocol, version 2 (HAProxy's binary header): who the client behind a load balancer is.

Behind HAProxy in TCP mode every connection comes from HAProxy's address, so per-source caps,
rate limits and the addresses in events would all see one client.  With ``send-proxy-v2``
HAProxy starts each connection with a small binary header carrying the client's address.

The header is believed **only** from a configured proxy (the Expert Setting
``trusted_proxies``): from anyone else the bytes are simply not TLS and the connection fails as
any garbage does.  From a trusted proxy the header is optional (a proxy that forwards
``X-Forwarded-For`` instead sends none): the first byte tells (``\\r`` starts the header, a TLS
record never does).  A ``LOCAL`` header (HAProxy's own health checks) keeps the proxy's address.

Format (haproxy.org, doc/proxy-protocol.txt, section 2.2): 12-byte signature, version/command,
family/transport, 2-byte length, then the addresses (IPv4: 12 bytes, IPv6: 36) and TLVs, which
are skipped.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
MAX_HEADER = 16 + 512  # addresses plus a few TLVs; HAProxy's own are far smaller


class ProxyHeaderError(ValueError):
    """Not a valid PROXY v2 header."""


@dataclass(frozen=True)
class ProxyHeader:
    length: int  # bytes the header took
    source: tuple[str, int] | None  # the client's address and port; None for LOCAL or an unknown family


def may_start(data: bytes) -> bool:
    """Whether ``data`` (the first bytes of a connection) begins like a PROXY v2 header."""
    return data[:1] == SIGNATURE[:1]


def parse(data: bytes) -> ProxyHeader | None:
    """The header at the start of ``data``; ``None`` while incomplete; ProxyHeaderError when invalid."""
    if len(data) < 16:
        if not SIGNATURE.startswith(data[:12]):
            raise ProxyHeaderError("not a PROXY v2 signature")
        return None
    if data[:12] != SIGNATURE:
        raise ProxyHeaderError("not a PROXY v2 signature")
    version, command = data[12] >> 4, data[12] & 0x0F
    if version != 2 or command not in (0, 1):
        raise ProxyHeaderError(f"unsupported PROXY version {version} / command {command}")
    family, transport = data[13] >> 4, data[13] & 0x0F
    length = int.from_bytes(data[14:16], "big")
    if 16 + length > MAX_HEADER:
        raise ProxyHeaderError(f"PROXY header of {16 + length} bytes is too long")
    if len(data) < 16 + length:
        return None
    body = data[16 : 16 + length]
    source: tuple[str, int] | None = None
    if command == 1 and transport == 1:  # PROXY over STREAM
        if family == 1:
            if length < 12:
                raise ProxyHeaderError("PROXY IPv4 addresses truncated")
            source = (str(ipaddress.IPv4Address(body[0:4])), int.from_bytes(body[8:10], "big"))
        elif family == 2:
            if length < 36:
                raise ProxyHeaderError("PROXY IPv6 addresses truncated")
            source = (str(ipaddress.IPv6Address(body[0:16])), int.from_bytes(body[32:34], "big"))
    return ProxyHeader(16 + length, source)


def build(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """A PROXY v2 header (tests; what HAProxy's ``send-proxy-v2`` sends)."""
    src, dst = ipaddress.ip_address(source[0]), ipaddress.ip_address(destination[0])
    family = 0x11 if src.version == 4 else 0x21
    body = src.packed + dst.packed + source[1].to_bytes(2, "big") + destination[1].to_bytes(2, "big")
    return SIGNATURE + bytes([0x21, family]) + len(body).to_bytes(2, "big") + body
