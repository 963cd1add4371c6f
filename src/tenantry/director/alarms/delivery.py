"""Where alarms go: e-mail (SMTP, settings ``smtp_*``) and a webhook (``webhook_url``), each recorded.

Both run in a worker thread with a timeout; a failure is recorded with its reason and never stops
the Director.  A webhook POST carries ``X-Tenantry-Signature: sha256=<HMAC of the body>`` keyed with
``webhook_secret`` (when set) and ``X-Tenantry-Timestamp``, so a receiver can check where it came from.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from tenantry.director.settings import ExpertSettings

TIMEOUT = 15.0


def _smtp_context(settings: ExpertSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=settings.smtp_ca_pem or None)


def send_mail(settings: ExpertSettings, subject: str, body: str) -> str:
    """Send one e-mail to ``smtp_to``; returns what the server accepted, raises OSError/SMTPException."""
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = ", ".join(settings.smtp_to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="tenantry")
    msg.set_content(body)
    smtp: smtplib.SMTP
    if settings.smtp_security == "tls":
        smtp = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=TIMEOUT, context=_smtp_context(settings)
        )
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT)
    with smtp:
        smtp.ehlo()
        if settings.smtp_security == "starttls":
            smtp.starttls(context=_smtp_context(settings))
            smtp.ehlo()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
        refused = smtp.send_message(msg)
    return f"sent to {len(settings.smtp_to) - len(refused)} of {len(settings.smtp_to)} recipient(s)"


def post_webhook(settings: ExpertSettings, payload: dict[str, Any]) -> str:
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    stamp = str(int(time.time()))
    req = urllib.request.Request(settings.webhook_url, data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("User-Agent", "tenantry-director")
    req.add_header("X-Tenantry-Timestamp", stamp)
    if settings.webhook_secret:
        mac = hmac.new(settings.webhook_secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        req.add_header("X-Tenantry-Signature", "sha256=" + mac)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        raise OSError(f"HTTP {exc.code} from the webhook") from None


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """What a receiver computes to check ``X-Tenantry-Signature``."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
