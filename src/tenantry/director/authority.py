"""The Director's internal CA, its own certificates and the one-time enrollment credentials."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from tenantry.common import pki
from tenantry.protocol.enrollment import EnrollmentKey
from tenantry.protocol.identity import DIRECTOR_URI, cert_sha256, serial_hex, tenant_uri


class CredentialHasher:
    """Argon2id (RFC 9106) from ``cryptography``; only the PHC string is ever stored."""

    def __init__(self, memory_kib: int = 19456, iterations: int = 2) -> None:
        self.memory_kib = memory_kib
        self.iterations = iterations

    def new_secret(self) -> str:
        return secrets.token_urlsafe(32)

    def hash(self, secret: str) -> str:
        kdf = Argon2id(salt=os.urandom(16), length=32, iterations=self.iterations, lanes=1, memory_cost=self.memory_kib)
        return kdf.derive_phc_encoded(secret.encode())

    @staticmethod
    def verify(secret: str, phc: str) -> bool:
        try:
            Argon2id.verify_phc_encoded(secret.encode(), phc)
        except (InvalidKey, ValueError):
            return False
        return True


class Authority:
    """CA at ``<state>/ca.{crt,key}``; server and Director-client certificates beside it."""

    def __init__(self, state_dir: Path, server_names: list[str]) -> None:
        self.dir = state_dir
        self.ca_cert_path = state_dir / "ca.crt"
        self.ca_key_path = state_dir / "ca.key"
        self.server_cert_path = state_dir / "server.crt"
        self.server_key_path = state_dir / "server.key"
        self.client_cert_path = state_dir / "director-client.crt"
        self.client_key_path = state_dir / "director-client.key"
        self.ca = pki.load_or_create_ca(self.ca_cert_path, self.ca_key_path, "tenantry Director CA")
        self.ca_pem = self.ca.cert_pem().decode()
        self.ca_sha256 = cert_sha256(self.ca.cert)
        self._ensure_server(server_names)
        self._ensure_director_client()

    def _needs_new(self, cert_path: Path, key_path: Path) -> x509.Certificate | None:
        if not (cert_path.exists() and key_path.exists()):
            return None
        pair = pki.load_keypair(cert_path, key_path)
        if pair.cert.issuer != self.ca.cert.subject:
            return None
        if pair.cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < dt.timedelta(days=30):
            return None
        return pair.cert

    def _ensure_server(self, names: list[str]) -> None:
        dns, ips = _split_names(names)
        current = self._needs_new(self.server_cert_path, self.server_key_path)
        if current is not None:
            try:
                san = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                have = {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
                    str(v) for v in san.get_values_for_type(x509.IPAddress)
                }
            except x509.ExtensionNotFound:
                have = set()
            if have == set(dns) | set(ips):
                return
        pair = pki.issue(self.ca, names[0] if names else socket.gethostname(), dns=dns, ips=ips, server=True)
        pki.write_keypair(pair, self.server_cert_path, self.server_key_path)

    def _ensure_director_client(self) -> None:
        if self._needs_new(self.client_cert_path, self.client_key_path) is not None:
            return
        pair = pki.issue(self.ca, "tenantry Director", uris=[DIRECTOR_URI], server=False, client=True)
        pki.write_keypair(pair, self.client_cert_path, self.client_key_path)

    def issue_tenant(
        self, csr: x509.CertificateSigningRequest, tenant_id: str, lifetime: dt.timedelta
    ) -> x509.Certificate:
        """The tenant's certificate: its id only in the SAN URI; client and server use (Direct Connect)."""
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise ValueError("the CSR's key must be EC or RSA")
        if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < 2048:
            raise ValueError("RSA keys must have at least 2048 bits")
        return pki.sign(
            self.ca,
            public_key,
            f"tenant {tenant_id}",
            uris=[tenant_uri(tenant_id)],
            server=True,
            client=True,
            valid_for=lifetime,
        )


def _split_names(names: list[str]) -> tuple[list[str], list[str]]:
    import ipaddress

    dns: list[str] = []
    ips: list[str] = []
    for name in names:
        try:
            ips.append(str(ipaddress.ip_address(name)))
        except ValueError:
            dns.append(name)
    return dns, ips


__all__ = ["Authority", "CredentialHasher", "EnrollmentKey", "serial_hex"]
