"""Who is on the other end: identities carried in certificate SAN URIs.

A tenant's identity is the URI ``urn:tenantry:tenant:<uuid>`` in the
subjectAltName of the client certificate the Director issued; nothing the peer
*says* (headers, bodies, common names) is ever used to decide who it is.
"""

from __future__ import annotations

import hashlib
import re
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import serialization

TENANT_URI_PREFIX = "urn:tenantry:tenant:"
DIRECTOR_URI = "urn:tenantry:director"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def new_tenant_id() -> str:
    return str(uuid.uuid4())


def is_tenant_id(value: str) -> bool:
    return bool(_UUID.match(value))


def tenant_uri(tenant_id: str) -> str:
    return TENANT_URI_PREFIX + tenant_id


def uris_of(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(u) for u in san.get_values_for_type(x509.UniformResourceIdentifier)]


def tenant_id_of(cert: x509.Certificate) -> str | None:
    """The tenant id in the certificate's SAN URI, or ``None`` (never the CN)."""
    ids = [u[len(TENANT_URI_PREFIX) :] for u in uris_of(cert) if u.startswith(TENANT_URI_PREFIX)]
    if len(ids) != 1 or not is_tenant_id(ids[0]):
        return None
    return ids[0]


def is_director(cert: x509.Certificate) -> bool:
    return DIRECTOR_URI in uris_of(cert)


def serial_hex(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "x")


def cert_sha256(cert: x509.Certificate) -> str:
    """SHA-256 over the DER certificate, lower-case hex (the CA pin format)."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def der_sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()
