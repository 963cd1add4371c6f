"""Pre-shared-key proofs for Direct Connect, bound to the TLS server certificate.

Python 3.11's ``ssl`` has no TLS-PSK, so a Direct Connect channel in PSK mode
is ordinary TLS (the Transporter's certificate may be self-signed) plus, on
every stream, a mutual HMAC-SHA256 proof over the SHA-256 fingerprint of the
server certificate *as the Director saw it* and a fresh nonce:

* the Director sends ``tenantry-psk-nonce`` and ``tenantry-psk-mac`` =
  HMAC(psk, "tenantry-dc-client" | fingerprint | nonce);
* the Transporter checks it against its *own* certificate's fingerprint and
  answers ``tenantry-psk-proof`` = HMAC(psk, "tenantry-dc-server" | fingerprint | nonce).

A man in the middle must present its own certificate, so the Director's MAC
does not verify at the real Transporter, and it cannot produce the proof the
Director expects: neither side ever sends the key itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

NONCE_HEADER = "tenantry-psk-nonce"
MAC_HEADER = "tenantry-psk-mac"
PROOF_HEADER = "tenantry-psk-proof"


def _mac(psk: str, role: bytes, fingerprint: str, nonce: str) -> str:
    msg = role + b"\0" + fingerprint.encode() + b"\0" + nonce.encode()
    return hmac.new(psk.encode(), msg, hashlib.sha256).hexdigest()


def client_headers(psk: str, fingerprint: str) -> tuple[str, list[tuple[str, str]]]:
    nonce = secrets.token_hex(16)
    return nonce, [(NONCE_HEADER, nonce), (MAC_HEADER, _mac(psk, b"tenantry-dc-client", fingerprint, nonce))]


def check_client(psk: str, fingerprint: str, nonce: str | None, mac: str | None) -> bool:
    if not nonce or not mac or len(nonce) > 64:
        return False
    return hmac.compare_digest(mac, _mac(psk, b"tenantry-dc-client", fingerprint, nonce))


def server_proof(psk: str, fingerprint: str, nonce: str) -> str:
    return _mac(psk, b"tenantry-dc-server", fingerprint, nonce)


def check_server(psk: str, fingerprint: str, nonce: str, proof: str | None) -> bool:
    return bool(proof) and hmac.compare_digest(str(proof), server_proof(psk, fingerprint, nonce))
