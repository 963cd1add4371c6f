"""Direct Connect: one TLS port at the client site (default 9446) through which the MSP's Director
reaches the allow-listed client resources, without a VPN and without the uplink.

The Director dials in, TLS + HTTP/2 (the Transporter is the server side of both);
each tunnel is its own CONNECT stream.  Authentication, chosen by the site:

* ``certificate``: the Director must present a client certificate from the
  Director CA this Transporter enrolled with, carrying ``urn:tenantry:director``;
  the Transporter presents its own tenant certificate.
* ``psk``: a pre-shared key proven on every stream with an HMAC bound to the
  Transporter's certificate (see :mod:`tenantry.protocol.psk`); works without
  enrollment (a self-signed certificate is made once).
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from tenantry.common import pki
from tenantry.protocol import rawtunnel, tls
from tenantry.protocol.channel import RAW_ALPN, Channel, ChannelLimits
from tenantry.protocol.gate import ConnectionGate, GateLimits
from tenantry.protocol.identity import der_sha256, is_director
from tenantry.transporter.config import StateDir, TransporterConfig
from tenantry.transporter.site import Guard, Site

log = logging.getLogger(__name__)


class DirectConnectServer:
    def __init__(self, config: TransporterConfig, state_dir: StateDir, site: Site) -> None:
        self.config = config
        self.state_dir = state_dir
        self.site = site
        self.server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    def _certificate(self) -> tuple[str, str]:
        sd = self.state_dir
        if sd.enrolled:
            return str(sd.cert), str(sd.key)
        if not (sd.direct_cert.exists() and sd.direct_key.exists()):
            issuer = pki.new_ca("tenantry Transporter (self-signed, Direct Connect PSK)")
            pair = pki.issue(issuer, "tenantry Transporter", dns=["localhost"], server=True)
            pki.write_keypair(pair, sd.direct_cert, sd.direct_key)
        return str(sd.direct_cert), str(sd.direct_key)

    async def start(self) -> int:
        dc = self.config.direct_connect
        cert, key = self._certificate()
        from pathlib import Path

        if dc.auth == "certificate":
            if not self.state_dir.enrolled:
                raise ValueError("Direct Connect with certificate auth needs an enrolled Transporter (or use psk)")
            ctx = tls.server_context(Path(cert), Path(key), client_ca=self.state_dir.ca)
            guard = Guard(kind="direct")
        else:
            ctx = tls.server_context(Path(cert), Path(key), client_ca=None)
            guard = Guard(kind="direct", psk=self.config.psk(), own_cert_der=_der(Path(cert)))
        # HTTP/2 for the channel; a raw tunnel connection (rawtunnel) asks for RAW_ALPN instead.
        ctx.set_alpn_protocols(["h2", RAW_ALPN])
        self.site.raw_tokens = rawtunnel.Tokens()
        self.site.raw_token_ttl = dc.proof_timeout
        limits = ChannelLimits(
            max_frame_size=1 << 20,
            stream_window=4 << 20,
            connection_window=16 << 20,
            max_concurrent_streams=256,
            handshake_timeout=dc.proof_timeout,
            control_frames_per_second=dc.control_frames_per_second,
            control_frames_burst=int(10 * dc.control_frames_per_second),
            # PSK peers are only proven by their first stream: until then they get a small budget.
            unproven_bytes=dc.unproven_bytes if dc.auth == "psk" else None,
            proof_timeout=dc.proof_timeout,
        )
        self.gate = ConnectionGate(lambda: GateLimits(dc.max_connections, dc.max_connections_per_source))

        def on_secure(channel: Channel) -> None:
            if dc.auth == "certificate" and (channel.peer_cert is None or not is_director(channel.peer_cert)):
                raise PermissionError("refused: client certificate is not the Director's")
            if channel.raw:
                task = asyncio.get_running_loop().create_task(self._redeem(channel, dc.proof_timeout))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                return
            log.info("Direct Connect channel from %s", channel.peer_address)

        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: Channel(
                ctx,
                server_side=True,
                h2_client=False,
                limits=limits,
                handler=partial(self.site.handle, guard=guard),
                on_secure=on_secure,
                gate=self.gate,
            ),
            host=dc.listen_host,
            port=dc.port,
            reuse_address=True,
        )
        self.port = int(self.server.sockets[0].getsockname()[1])
        self.site.direct_connect_port = self.port
        log.info(
            "Direct Connect listening on %s:%d (%s auth); allow-list: %s",
            dc.listen_host,
            self.port,
            dc.auth,
            ", ".join(self.config.allow) or "(empty)",
        )
        return self.port

    async def _redeem(self, channel: Channel, timeout: float) -> None:
        """A raw tunnel connection: its first line must be a token a CONNECT stream issued to this peer."""
        assert self.site.raw_tokens is not None
        try:
            token, rest = await rawtunnel.read_token(channel, timeout)
            peer = channel.peer_cert_der
            self.site.raw_tokens.redeem(token, der_sha256(peer) if peer else "", channel, bytes(rest))
        except rawtunnel.RawRefused as exc:
            log.warning("raw tunnel connection from %s refused: %s", channel.peer_address, exc)
            channel.abort(f"refused: {exc}")
            return
        channel.mark_proven()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def _der(path: object) -> bytes:
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    assert isinstance(path, Path)
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(serialization.Encoding.DER)
