"""The enrollment key: the one string the MSP hands to a client site to enroll its Transporter."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

ENROLLMENT_KEY_PREFIX = "tnt1_"


@dataclass(frozen=True)
class EnrollmentKey:
    """What the MSP hands to the client site: tenant id, secret, CA pin and (if known) the setup URL."""

    tenant_id: str
    secret: str
    ca_sha256: str
    url: str | None = None

    def encode(self) -> str:
        payload = {"t": self.tenant_id, "s": self.secret, "ca": self.ca_sha256}
        if self.url:
            payload["u"] = self.url
        raw = json.dumps(payload, separators=(",", ":")).encode()
        return ENROLLMENT_KEY_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> EnrollmentKey:
        text = text.strip()
        if not text.startswith(ENROLLMENT_KEY_PREFIX):
            raise ValueError(f"an enrollment key starts with {ENROLLMENT_KEY_PREFIX!r}")
        body = text[len(ENROLLMENT_KEY_PREFIX) :]
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            return cls(tenant_id=str(data["t"]), secret=str(data["s"]), ca_sha256=str(data["ca"]), url=data.get("u"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError("the enrollment key is damaged (copy it again)") from exc
