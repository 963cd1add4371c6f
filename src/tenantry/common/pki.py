"""The project's own small PKI: one CA, server and client certificates, CSRs.

Used by the lab (the vCenter simulator's server certificate), by the Director
(its internal CA issues tenant client certificates from their CSRs) and by the
Transporter (it keeps its private key and only sends a CSR).  Everything goes
through ``cryptography``; private keys are written 0600 and atomically.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
KeyType = Literal["ec", "rsa"]

_CLOCK_SKEW = dt.timedelta(minutes=5)


def new_key(key_type: KeyType = "ec") -> PrivateKey:
    """A fresh private key: P-256 (default, fast handshakes) or RSA-2048."""
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: PrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _sans(dns: Sequence[str], ips: Sequence[str], uris: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    names += [x509.UniformResourceIdentifier(u) for u in uris]
    return names


def new_ca(
    common_name: str,
    *,
    organization: str | None = "tenantry",
    valid_for: dt.timedelta = dt.timedelta(days=3650),
    key_type: KeyType = "ec",
) -> KeyPair:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    key = new_key(key_type)
    name = _name(common_name, organization)
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert=cert, key=key)


def sign(
    ca: KeyPair,
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    common_name: str,
    *,
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    uris: Sequence[str] = (),
    server: bool = True,
    client: bool = False,
    valid_for: dt.timedelta = dt.timedelta(days=825),
    serial: int | None = None,
) -> x509.Certificate:
    """Sign a leaf certificate for ``public_key`` with ``ca``."""
    if not (server or client):
        raise ValueError("a leaf certificate needs server=True, client=True or both")
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    )
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    names = _sans(dns, ips, uris)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca.key, hashes.SHA256())


def issue(
    ca: KeyPair,
    common_name: str,
    *,
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    uris: Sequence[str] = (),
    server: bool = True,
    client: bool = False,
    valid_for: dt.timedelta = dt.timedelta(days=825),
    key_type: KeyType = "ec",
) -> KeyPair:
    """A new key and a certificate for it signed by ``ca``."""
    key = new_key(key_type)
    cert = sign(
        ca,
        key.public_key(),
        common_name,
        dns=dns,
        ips=ips,
        uris=uris,
        server=server,
        client=client,
        valid_for=valid_for,
    )
    return KeyPair(cert=cert, key=key)


def make_csr(key: PrivateKey, common_name: str) -> x509.CertificateSigningRequest:
    """A CSR for ``key``; the signer decides every extension, the CSR only proves possession."""
    return x509.CertificateSigningRequestBuilder().subject_name(_name(common_name)).sign(key, hashes.SHA256())


def load_csr(pem: bytes) -> x509.CertificateSigningRequest:
    """Parse and verify a PEM CSR; raises ``ValueError`` when malformed or badly signed."""
    csr = x509.load_pem_x509_csr(pem)
    if not csr.is_signature_valid:
        raise ValueError("CSR signature does not verify")
    return csr


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_keypair(pair: KeyPair, cert_path: Path, key_path: Path) -> None:
    """Write the certificate (0644) and the private key (0600), each atomically."""
    _atomic_write(key_path, pair.key_pem(), 0o600)
    _atomic_write(cert_path, pair.cert_pem(), 0o644)


def write_private(path: Path, data: bytes) -> None:
    """Write secret material atomically with mode 0600."""
    _atomic_write(path, data, 0o600)


def load_keypair(cert_path: Path, key_path: Path) -> KeyPair:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{key_path}: unsupported private key type {type(key).__name__}")
    return KeyPair(cert=cert, key=key)


def load_or_create_ca(cert_path: Path, key_path: Path, common_name: str, *, key_type: KeyType = "ec") -> KeyPair:
    """Keep an existing CA; create it only when neither file exists."""
    if cert_path.exists() and key_path.exists():
        return load_keypair(cert_path, key_path)
    if cert_path.exists() or key_path.exists():
        raise FileExistsError(f"only one of {cert_path} and {key_path} exists; refusing to replace a half CA")
    ca = new_ca(common_name, key_type=key_type)
    write_keypair(ca, cert_path, key_path)
    return ca
