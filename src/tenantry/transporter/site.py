"""What the Transporter answers on its streams: dashboard, commands, settings, certificates, tunnels.

The same handler serves the uplink (the Director opened the stream over the
session this Transporter dialed) and Direct Connect (the Director dialed in).
Tunnels reach only the ``host:port`` pairs on this site's allow-list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import BaseModel, ValidationError

import tenantry
from tenantry.common import pki
from tenantry.protocol import psk as pskproof
from tenantry.protocol import rawtunnel
from tenantry.protocol.channel import H2Stream
from tenantry.protocol.identity import der_sha256, tenant_id_of
from tenantry.protocol.messages import (
    Ack,
    CertificateInstall,
    CommandRequest,
    CommandResult,
    CsrResponse,
    Dashboard,
    ErrorBody,
    RepositorySpace,
    SiteInfo,
    TaskInfo,
    TransporterSettings,
    TunnelCheck,
    TunnelCheckResult,
    split_target,
)
from tenantry.protocol.relay import TcpSide, relay
from tenantry.transporter.backup.jobs import Jobs
from tenantry.transporter.config import StateDir, TransporterConfig

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20


@dataclass
class Guard:
    """Per-channel access rules: which paths are allowed and, in PSK mode, the proof to check."""

    kind: str  # "uplink" or "direct"
    psk: str | None = None
    own_cert_der: bytes = b""

    def check(self, stream: H2Stream) -> list[tuple[str, str]] | None:
        """Extra response headers when allowed, ``None`` when the stream must be refused."""
        if self.psk is None:
            return []
        fp = der_sha256(self.own_cert_der)
        nonce = stream.header(pskproof.NONCE_HEADER)
        if not pskproof.check_client(self.psk, fp, nonce, stream.header(pskproof.MAC_HEADER)):
            return None
        assert nonce is not None
        stream.channel.mark_proven()
        return [(pskproof.PROOF_HEADER, pskproof.server_proof(self.psk, fp, nonce))]


class Site:
    def __init__(
        self,
        config: TransporterConfig,
        state_dir: StateDir,
        tenant_id: str,
        settings: TransporterSettings | None,
        on_settings: Callable[[TransporterSettings], None] | None = None,
    ) -> None:
        self.config = config
        self.state_dir = state_dir
        self.tenant_id = tenant_id
        self.settings = settings
        self.on_settings = on_settings
        self.started_at = time.time()
        self.hostname = socket.gethostname()
        self.tasks: dict[str, TaskInfo] = {}
        self.direct_connect_port: int | None = None
        # Direct Connect's one-time tokens for raw tunnel connections (set by its listener).
        self.raw_tokens: rawtunnel.Tokens | None = None
        self.raw_token_ttl = 5.0
        self._allow = set(config.allow)
        self.jobs = Jobs(config, state_dir, self.tasks, lambda: self.max_tasks)

    @property
    def max_tasks(self) -> int:
        return self.settings.max_concurrent_tasks if self.settings else 6

    def allowed(self, target: str) -> tuple[bool, str]:
        try:
            host, port = split_target(target)
        except ValueError as exc:
            return False, str(exc)
        if f"{host}:{port}" in self._allow:
            return True, "allowed"
        return False, f"{host}:{port} is not on this Transporter's allow-list"

    # ------------------------------------------------------------------ dispatch
    async def handle(self, stream: H2Stream, guard: Guard) -> None:
        extra = guard.check(stream)
        if extra is None:
            await _reply(stream, 401, ErrorBody(error="pre-shared-key proof missing or wrong"))
            return
        method, path = stream.method, stream.path
        if path.startswith("/v1/jobs/") and guard.kind == "uplink":
            await self.jobs.handle(stream, extra)  # backups and restores: uplink only
            return
        if method == "CONNECT":
            await self._tunnel(stream, extra, guard.kind)
            return
        routes: dict[tuple[str, str], Callable[[H2Stream], Awaitable[tuple[int, BaseModel]]]] = {
            ("GET", "/v1/info"): self._info,
            ("GET", "/v1/dashboard"): self._dashboard,
            ("POST", "/v1/commands"): self._command,
            ("POST", "/v1/tunnel-check"): self._tunnel_check,
        }
        if guard.kind == "uplink":
            # Only the uplink may reconfigure this site; Direct Connect is for reaching resources.
            routes |= {
                ("PUT", "/v1/settings"): self._settings,
                ("POST", "/v1/csr"): self._csr,
                ("PUT", "/v1/certificate"): self._certificate,
            }
        handler = routes.get((method, path))
        if handler is None:
            known = {p for _m, p in routes}
            status = 405 if path in known else 404
            await _reply(stream, status, ErrorBody(error=f"{method} {path} is not served here"), extra)
            return
        try:
            status, body = await handler(stream)
        except _BadRequest as exc:
            status, body = 400, ErrorBody(error=str(exc))
        await _reply(stream, status, body, extra)

    # ------------------------------------------------------------------ endpoints
    async def _info(self, stream: H2Stream) -> tuple[int, BaseModel]:
        return 200, self.info()

    def info(self) -> SiteInfo:
        return SiteInfo(
            tenant_id=self.tenant_id,
            version=tenantry.__version__,
            hostname=self.hostname,
            started_at=self.started_at,
            direct_connect_port=self.direct_connect_port,
            settings=self.settings,
        )

    async def _dashboard(self, stream: H2Stream) -> tuple[int, BaseModel]:
        repos = []
        for path in self.config.repository_paths:
            try:
                usage = await asyncio.to_thread(shutil.disk_usage, path)
                repos.append(RepositorySpace(path=str(path), total_bytes=usage.total, free_bytes=usage.free))
            except OSError as exc:
                repos.append(RepositorySpace(path=str(path), error=exc.strerror or str(exc)))
        return 200, Dashboard(
            site=self.info(), repositories=repos, tasks=list(self.tasks.values()), max_concurrent_tasks=self.max_tasks
        )

    async def _settings(self, stream: H2Stream) -> tuple[int, BaseModel]:
        settings = await _body(stream, TransporterSettings)
        self.settings = settings
        if self.on_settings is not None:
            self.on_settings(settings)
        return 200, Ack()

    async def _command(self, stream: H2Stream) -> tuple[int, BaseModel]:
        req = await _body(stream, CommandRequest)
        if req.command not in _COMMANDS:
            return 404, ErrorBody(error=f"unknown command {req.command!r}; known: {', '.join(sorted(_COMMANDS))}")
        if len(self.tasks) >= self.max_tasks:
            return 429, ErrorBody(error=f"{len(self.tasks)} tasks running; max_concurrent_tasks is {self.max_tasks}")
        task_id = secrets.token_hex(6)
        self.tasks[task_id] = TaskInfo(id=task_id, command=req.command, started_at=time.time())
        try:
            result = await _COMMANDS[req.command](self, req.args)
            return 200, CommandResult(task_id=task_id, command=req.command, ok=True, result=result)
        except (ValueError, TypeError) as exc:
            return 200, CommandResult(task_id=task_id, command=req.command, ok=False, error=str(exc))
        finally:
            self.tasks.pop(task_id, None)

    async def _csr(self, stream: H2Stream) -> tuple[int, BaseModel]:
        await stream.read_all(MAX_BODY)
        key = pki.new_key()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        pki.write_private(self.state_dir.pending_key, pem)
        csr = pki.make_csr(key, f"transporter {self.tenant_id}")
        return 200, CsrResponse(csr_pem=csr.public_bytes(serialization.Encoding.PEM).decode())

    async def _certificate(self, stream: H2Stream) -> tuple[int, BaseModel]:
        body = await _body(stream, CertificateInstall)
        try:
            cert = x509.load_pem_x509_certificate(body.certificate_pem.encode())
            pending = serialization.load_pem_private_key(self.state_dir.pending_key.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            return 409, ErrorBody(error=f"no matching pending key or bad certificate: {exc}")
        ca = x509.load_pem_x509_certificate(self.state_dir.ca.read_bytes())
        mismatch = cert.public_key() != pending.public_key() or tenant_id_of(cert) != self.tenant_id
        if mismatch or cert.issuer != ca.subject:
            return 409, ErrorBody(error="certificate does not match the pending key, this tenant or the CA")
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError) as exc:
            return 409, ErrorBody(error=f"certificate not signed by the Director CA: {exc}")
        if not isinstance(pending, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            return 409, ErrorBody(error="unsupported key type")
        pki.write_keypair(pki.KeyPair(cert=cert, key=pending), self.state_dir.cert, self.state_dir.key)
        self.state_dir.pending_key.unlink(missing_ok=True)
        log.info("client certificate renewed; valid until %s", cert.not_valid_after_utc.isoformat())
        return 200, Ack(message="installed; used from the next connection")

    async def _tunnel_check(self, stream: H2Stream) -> tuple[int, BaseModel]:
        req = await _body(stream, TunnelCheck)
        ok, message = self.allowed(req.target)
        return 200, TunnelCheckResult(target=req.target, allowed=ok, message=message)

    # ------------------------------------------------------------------ tunnels
    async def _raw_tunnel(
        self,
        stream: H2Stream,
        extra: list[tuple[str, str]],
        tcp: TcpSide,
    ) -> None:
        """The tunnel's bytes on their own TLS connection, redeemed with a one-time token (rawtunnel)."""
        assert self.raw_tokens is not None
        peer = stream.channel.peer_cert_der
        token, pending = self.raw_tokens.issue(der_sha256(peer) if peer else "", self.raw_token_ttl)
        try:
            stream.send_headers([(":status", "200"), (rawtunnel.TOKEN_HEADER, token), *extra])
            try:
                channel, first = await asyncio.wait_for(asyncio.shield(pending.connection), self.raw_token_ttl)
            except TimeoutError:
                log.info("raw tunnel connection for %s never came", stream.header(":authority"))
                stream.reset()
                return
        finally:
            self.raw_tokens.withdraw(token)
        try:
            await rawtunnel.relay_raw(channel, tcp, first)
        except (ConnectionError, RuntimeError) as exc:
            log.info("raw tunnel connection to %s ended: %s", stream.header(":authority"), exc)
            raise
        stream.end()

    async def _tunnel(self, stream: H2Stream, extra: list[tuple[str, str]], guard_kind: str = "uplink") -> None:
        target = stream.header(":authority") or ""
        ok, message = self.allowed(target)
        if not ok:
            log.warning("tunnel to %r refused: not on the allow-list", target)
            await _reply(stream, 403, ErrorBody(error=message), extra)
            return
        host, port = split_target(target)
        try:
            # What the target sends before the tunnel is up (a banner) waits in ``tcp``.
            _t, tcp = await asyncio.wait_for(asyncio.get_running_loop().create_connection(TcpSide, host, port), 10)
        except (OSError, TimeoutError) as exc:
            await _reply(stream, 502, ErrorBody(error=f"cannot connect to {target}: {exc}"), extra)
            return
        try:
            if (
                guard_kind == "direct"
                and self.raw_tokens is not None
                and stream.header(rawtunnel.REQUEST_HEADER) == "1"
            ):
                await self._raw_tunnel(stream, extra, tcp)
                return
            stream.send_headers([(":status", "200"), *extra])
            await relay(tcp, stream)
        finally:
            tcp.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(tcp.wait_closed(), 10)


M = TypeVar("M", bound=BaseModel)


class _BadRequest(ValueError):
    pass


async def _body(stream: H2Stream, model: type[M]) -> M:
    raw = await stream.read_all(MAX_BODY)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _BadRequest(f"malformed {model.__name__}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


async def _reply(stream: H2Stream, status: int, body: BaseModel, extra: list[tuple[str, str]] | None = None) -> None:
    data = body.model_dump_json().encode()
    headers = [
        (":status", str(status)),
        ("content-type", "application/json"),
        ("content-length", str(len(data))),
        *(extra or []),
    ]
    stream.send_headers(headers)
    await stream.write(data)
    stream.end()


# ---------------------------------------------------------------------- commands
async def _cmd_echo(site: Site, args: dict[str, Any]) -> dict[str, Any]:
    return {"echo": args}


async def _cmd_sleep(site: Site, args: dict[str, Any]) -> dict[str, Any]:
    seconds = float(args.get("seconds", 1))
    if not 0 <= seconds <= 3600:
        raise ValueError("seconds must be within 0..3600")
    await asyncio.sleep(seconds)
    return {"slept": seconds}


async def _cmd_disk_usage(site: Site, args: dict[str, Any]) -> dict[str, Any]:
    path = str(args.get("path", os.sep))
    if path not in {str(p) for p in site.config.repository_paths}:
        raise ValueError("path must be one of the repository paths")
    usage = await asyncio.to_thread(shutil.disk_usage, path)
    return {"path": path, "total_bytes": usage.total, "free_bytes": usage.free}


_COMMANDS: dict[str, Callable[[Site, dict[str, Any]], Awaitable[dict[str, Any]]]] = {
    "echo": _cmd_echo,
    "sleep": _cmd_sleep,
    "disk_usage": _cmd_disk_usage,
}
