"""Enrollment: one-time credentials in, a client certificate and the Director's CA out.

The first contact cannot verify the Director against a CA it does not have yet,
so the enrollment key carries the SHA-256 of the Director's CA certificate: the
Transporter fetches the CA, checks that pin, and from then on talks to the
Director only over TLS verified against that CA.  The private key never leaves
the site (only a CSR is sent) and is written 0600.

HTTP goes through the standard library's ``urllib`` in a worker thread: a few
requests per enrollment do not justify an HTTP client dependency.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tenantry.common import pki
from tenantry.protocol import tls
from tenantry.protocol.enrollment import EnrollmentKey
from tenantry.protocol.identity import cert_sha256, tenant_id_of
from tenantry.protocol.messages import TransporterSettings
from tenantry.transporter.config import State, StateDir


class EnrollError(RuntimeError):
    """Enrollment failed; ``str()`` is the message for the operator."""


def _request(url: str, ctx: ssl.SSLContext, body: dict[str, Any] | None = None, timeout: float = 30) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    if data:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
            return json.loads(resp.read(1 << 20))
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read(65536)).get("detail", "")
        except ValueError:
            detail = ""
        raise EnrollError(f"the Director refused: HTTP {exc.code} {detail}".rstrip()) from None
    except urllib.error.URLError as exc:
        raise EnrollError(f"cannot reach the Director at {url}: {exc.reason}") from None
    except (OSError, ValueError) as exc:
        raise EnrollError(f"talking to the Director at {url} failed: {exc}") from None


def fetch_info(director_url: str, ca: Path, timeout: float = 10) -> dict[str, Any]:
    """``GET /api/v1/enroll/info`` verified against our CA (uplink port, setup port)."""
    ctx = tls.client_context(ca=ca)
    result = _request(director_url.rstrip("/") + "/api/v1/enroll/info", ctx, timeout=timeout)
    if not isinstance(result, dict):
        raise EnrollError("the Director sent a malformed answer")
    return result


def enroll_sync(state_dir: StateDir, key: EnrollmentKey, director_url: str | None) -> State:
    url = (director_url or key.url or "").rstrip("/")
    if not url.startswith("https://"):
        raise EnrollError("no Director URL: pass --director-url https://host:4443 (the key does not carry one)")
    # 1. The CA, pinned by the fingerprint in the key.
    ca_answer = _request(url + "/api/v1/enroll/ca", tls.client_context(ca=None))
    try:
        ca_cert = x509.load_pem_x509_certificate(str(ca_answer["ca_pem"]).encode())
    except (KeyError, TypeError, ValueError):
        raise EnrollError("the Director sent no usable CA certificate") from None
    if cert_sha256(ca_cert) != key.ca_sha256.lower():
        raise EnrollError(
            "the Director's CA does not match the fingerprint in the enrollment key: "
            "wrong Director URL, or someone is in the middle"
        )
    state_dir.path.mkdir(parents=True, exist_ok=True)
    state_dir.path.chmod(0o700)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    # 2. A CSR for a key that stays here.
    private = pki.new_key()
    csr = pki.make_csr(private, f"transporter {key.tenant_id}")
    tmp_ca = state_dir.path / "ca.crt.enrolling"
    tmp_ca.write_bytes(ca_pem)
    try:
        answer = _request(
            url + "/api/v1/enroll",
            tls.client_context(ca=tmp_ca),
            {
                "tenant_id": key.tenant_id,
                "token": key.secret,
                "csr_pem": csr.public_bytes(serialization.Encoding.PEM).decode(),
            },
        )
    finally:
        tmp_ca.unlink(missing_ok=True)
    try:
        cert = x509.load_pem_x509_certificate(str(answer["certificate_pem"]).encode())
        settings = TransporterSettings.model_validate(answer["settings"])
    except (KeyError, TypeError, ValueError):
        raise EnrollError("the Director's enrollment answer is malformed") from None
    if tenant_id_of(cert) != key.tenant_id or cert.public_key() != private.public_key():
        raise EnrollError("the issued certificate is not for this tenant or this key")
    # 3. Everything on disk, key material 0600, each file atomically.
    pki.write_private(state_dir.ca, ca_pem)
    state_dir.ca.chmod(0o644)
    pki.write_keypair(pki.KeyPair(cert=cert, key=private), state_dir.cert, state_dir.key)
    state = State(tenant_id=key.tenant_id, director_url=url, settings=settings)
    state_dir.save(state)
    return state


async def enroll(state_dir: StateDir, key: EnrollmentKey, director_url: str | None) -> State:
    return await asyncio.to_thread(enroll_sync, state_dir, key, director_url)
