"""TLS contexts for both ends; one place decides versions, verification and identity checks."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal

TLSVersion = Literal["1.2", "1.3"]


def _min_version(version: TLSVersion) -> ssl.TLSVersion:
    return ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2


def server_context(
    cert: Path,
    key: Path,
    *,
    client_ca: Path | None,
    min_version: TLSVersion = "1.2",
    require_client_cert: bool = True,
) -> ssl.SSLContext:
    """A server context; with ``client_ca`` it verifies client certificates against that CA only."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _min_version(min_version)
    ctx.load_cert_chain(cert, key)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    # No client of ours resumes a TLS session (each dial starts a new one), so TLS 1.3 session
    # tickets would be work and bytes for nothing on every handshake.
    ctx.num_tickets = 0
    if client_ca is not None:
        ctx.load_verify_locations(cafile=str(client_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def client_context(
    *,
    ca: Path | None,
    cert: Path | None = None,
    key: Path | None = None,
    min_version: TLSVersion = "1.2",
    check_hostname: bool = True,
) -> ssl.SSLContext:
    """A client context that trusts ``ca`` only (never the system store).

    ``ca=None`` disables verification: used only where the caller pins the
    peer another way (CA fingerprint at enrollment, PSK proof on Direct Connect).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = _min_version(min_version)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    if ca is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cafile=str(ca))
        ctx.check_hostname = check_hostname
        ctx.verify_mode = ssl.CERT_REQUIRED
    if cert is not None and key is not None:
        ctx.load_cert_chain(cert, key)
    return ctx
