"""The lab's TLS material: one CA per state directory (kept) and the simulator's server certificate."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from tenantry.common import pki

_RENEW_BEFORE = dt.timedelta(days=7)


@dataclass(frozen=True)
class LabTLS:
    """Paths of the lab CA certificate and of the simulator's certificate and key (PEM)."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def _usable(cert_file: Path, key_file: Path, ca: pki.KeyPair) -> bool:
    if not (cert_file.exists() and key_file.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        cert.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > _RENEW_BEFORE


def ensure_tls(state_dir: Path) -> LabTLS:
    """Create (once) the lab CA under ``state_dir/tls`` and a server certificate it signs.

    The server key is RSA-2048 with SANs ``DNS:localhost`` and ``IP:127.0.0.1``;
    it is reissued only when missing, expiring or not signed by the current CA.
    """
    tls_dir = state_dir / "tls"
    ca = pki.load_or_create_ca(tls_dir / "ca.pem", tls_dir / "ca-key.pem", "tenantry lab CA", key_type="rsa")
    cert_file, key_file = tls_dir / "vcsim.pem", tls_dir / "vcsim-key.pem"
    if not _usable(cert_file, key_file, ca):
        pair = pki.issue(ca, "localhost", dns=["localhost"], ips=["127.0.0.1"], key_type="rsa")
        pki.write_keypair(pair, cert_file, key_file)
    return LabTLS(ca_file=tls_dir / "ca.pem", cert_file=cert_file, key_file=key_file)
