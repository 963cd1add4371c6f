"""Expert Settings: a typed registry of the Director's tunables.

Each setting is a field of :class:`ExpertSettings` with its type, default,
bounds and a description; the REST API serves this registry, validates
changes against it and refuses unknown keys or out-of-range values with a
message that says what is allowed.  ``applies`` tells when a change takes
effect: ``live`` (at once, no restart, no action at the client) or
``restart`` (the next Director start).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tenantry.protocol.messages import TransporterSettings

Applies = Literal["live", "restart"]
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")


def _f(default: Any, description: str, applies: Applies = "live", **bounds: Any) -> Any:
    return Field(default, description=description, json_schema_extra={"applies": applies}, **bounds)


def _secret(description: str) -> Any:
    """A write-only setting: stored, never returned (``GET`` says only whether one is set)."""
    return Field("", description=description, json_schema_extra={"applies": "live", "secret": True}, max_length=4096)


SECRET_SET = "********"


class ExpertSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    setup_port: int = _f(4443, "HTTPS port of the REST API and the enrollment endpoints", "restart", ge=1, le=65535)
    uplink_port: int = _f(
        6702,
        "mutual-TLS uplink port; a change opens the new listener, moves every connected Transporter "
        "and closes the old listener",
        ge=1,
        le=65535,
    )
    heartbeat_interval: float = _f(15.0, "seconds between heartbeats (HTTP/2 PING) on each uplink", ge=0.1, le=300)
    heartbeat_misses: int = _f(3, "missed heartbeat intervals after which a peer is declared dead", ge=2, le=20)
    reconnect_backoff_cap: float = _f(
        60.0, "upper bound in seconds of a Transporter's full-jitter reconnect backoff", ge=1, le=3600
    )
    max_concurrent_tasks: int = _f(6, "tasks a Transporter runs at once; more are refused (HTTP 429)", ge=1, le=1024)
    max_sessions: int = _f(10000, "uplink sessions the Director accepts at once", ge=1, le=100000)
    max_handshakes_per_second: int = _f(
        200,
        "uplink connections admitted per second (any 1 s window); excess ones are closed before TLS and "
        "their Transporters retry with backoff, so a reconnect storm cannot starve the Director",
        ge=1,
        le=100000,
    )
    max_streams_per_session: int = _f(100, "concurrent streams the Director opens on one session", ge=1, le=1000)
    max_frame_size: int = _f(16384, "largest HTTP/2 frame payload accepted, bytes", ge=16384, le=16777215)
    max_message_bytes: int = _f(1 << 20, "largest request/response body on an uplink stream", ge=1024, le=1 << 28)
    handshake_timeout: float = _f(10.0, "seconds a peer has to complete the TLS handshake", ge=1, le=120)
    tls_min_version: Literal["1.2", "1.3"] = _f("1.2", "lowest TLS version accepted on both ports (new connections)")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = _f("INFO", "Director log level")
    client_cert_lifetime_hours: int = _f(
        720, "lifetime of issued tenant certificates; renewed over the uplink at two thirds", ge=1, le=8760
    )
    enrollment_ttl_hours: int = _f(168, "how long one-time enrollment credentials stay valid", ge=1, le=8760)
    enroll_failures_per_minute: int = _f(
        10, "failed enrollments per source address per minute before HTTP 429", ge=1, le=10000
    )
    shutdown_grace: float = _f(10.0, "seconds in-flight streams get to finish on shutdown", ge=0, le=600)
    # ---- limits on the setup port (4443) before a client has proven anything
    api_max_connections: int = _f(
        1024,
        "connections the setup port holds at once; past it a newcomer displaces the oldest idle connection of "
        "the busiest source address, or is refused before TLS",
        ge=16,
        le=100000,
    )
    api_max_connections_per_source: int = _f(
        32, "connections one source address may hold on the setup port (trusted proxies exempt)", ge=1, le=100000
    )
    api_handshake_timeout: float = _f(5.0, "seconds a setup-port client has to complete TLS", ge=0.5, le=120)
    api_header_timeout: float = _f(
        10.0, "seconds a setup-port client has to send a request's headers once it started", ge=0.5, le=300
    )
    api_body_timeout: float = _f(30.0, "seconds a setup-port client has to send a request body", ge=0.5, le=3600)
    trusted_proxies: list[str] = _f(
        [],
        "addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For is believed; none by default, "
        "so a client cannot choose the address that rate limits and events record",
    )
    # ---- limits on an enrolled Transporter's uplink session
    control_frames_per_second: float = _f(
        100.0,
        "HTTP/2 control frames (PING, SETTINGS, PRIORITY, RST_STREAM, empty DATA) a peer may send per second, "
        "bursts of ten times that; past it the session gets GOAWAY ENHANCE_YOUR_CALM",
        ge=1,
        le=100000,
    )
    # ---- backups
    repository_frame_size: int = _f(
        1 << 20,
        "largest HTTP/2 frame a Transporter may send once its session has carried a backup job (repository "
        "data in fewer, larger frames); other sessions keep max_frame_size",
        ge=16384,
        le=16777215,
    )
    enroll_concurrency: int = _f(
        2, "enrollment attempts verified (Argon2id) at once; more wait briefly, then get HTTP 429", ge=1, le=64
    )

    # ---- console and portal (director/web/, director/accounts/): sessions and logins
    session_idle_timeout: float = _f(
        1800.0, "seconds without a request after which a console or portal session ends", ge=5, le=86400
    )
    session_absolute_timeout: float = _f(
        43200.0, "seconds after login after which a session ends, however busy", ge=60, le=2592000
    )
    login_failures_per_minute: int = _f(
        10, "login attempts per source address per minute (counted before the password is checked)", ge=1, le=10000
    )
    login_lockout_failures: int = _f(
        5, "failed logins in a row after which an account is locked for login_lockout_seconds", ge=1, le=1000
    )
    login_lockout_seconds: float = _f(900.0, "how long an account stays locked after too many failures", ge=1, le=86400)
    # ---- jobs (director/jobs/): how a button becomes a run
    jobs_backend: Literal["runner", "awx"] = _f(
        "runner",
        "what runs the collection's playbooks: ansible-runner on the Director host, or AWX/AAP job templates",
    )
    jobs_timeout: float = _f(7200.0, "seconds a job may run before it is stopped and marked failed", ge=10, le=86400)
    portal_vms_max_age: float = _f(
        60.0,
        "seconds a tenant's VM list (read live from vCenter by a job) is shown before it is read again",
        ge=0,
        le=86400,
    )
    awx_url: str = _f("", "AWX/AAP base URL for jobs_backend awx, e.g. https://awx.example", max_length=2048)
    awx_token: str = _secret("AWX/AAP OAuth2 token of the account the Director launches job templates as")
    awx_ca_pem: str = _f("", "PEM CA certificate that signed AWX's certificate (empty: system trust)", max_length=65536)
    awx_template_prefix: str = _f(
        "tenantry: ", "job template names are <prefix><playbook title> (awx/configure.yml)", max_length=200
    )
    awx_per_tenant_templates: bool = _f(
        False, "launch the per-tenant job templates (<prefix><tenant>: <title>) that fix the tenant in AWX"
    )
    # ---- alarms (director/alarms/)
    alarm_check_interval: float = _f(10.0, "seconds between two evaluations of the alarm rules", ge=0.2, le=3600)
    alarm_offline_after: float = _f(
        300.0, "seconds a remote tenant's Transporter may be offline before an alarm is raised", ge=1, le=2592000
    )
    alarm_certificate_days: int = _f(
        14, "raise an alarm when a tenant's certificate expires within this many days", ge=1, le=3650
    )
    alarm_run_stuck_after: float = _f(
        3600.0, "seconds a failover or test failover may run before it is reported stuck", ge=10, le=604800
    )
    alarm_notify_cleared: bool = _f(True, "also send an e-mail / webhook when an alarm clears")
    smtp_host: str = _f("", "SMTP server for alarm e-mails (empty: no e-mail)", max_length=255)
    smtp_port: int = _f(25, "SMTP port (25, 587 for STARTTLS, 465 for TLS)", ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = _f("starttls", "SMTP transport security")
    smtp_username: str = _f("", "SMTP login (empty: none)", max_length=255)
    smtp_password: str = _secret("SMTP password")
    smtp_from: str = _f("tenantry-director@localhost", "sender address of alarm e-mails", max_length=255)
    smtp_to: list[str] = _f([], "recipients of alarm e-mails")
    smtp_ca_pem: str = _f("", "PEM CA certificate of the SMTP server (empty: system trust)", max_length=65536)
    webhook_url: str = _f("", "URL alarms are POSTed to as JSON (empty: no webhook)", max_length=2048)
    webhook_secret: str = _secret("key of the X-Tenantry-Signature HMAC-SHA256 header of each webhook POST")

    @field_validator("smtp_to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            item = item.strip()
            if not _EMAIL.match(item):
                raise ValueError(f"{item!r} is not an e-mail address")
            out.append(item)
        return out

    @field_validator("awx_url", "webhook_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("https://", "http://")):
            raise ValueError(f"{value!r} must start with https:// (or http://)")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            try:
                out.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return out

    def proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(n) for n in self.trusted_proxies]

    def for_transporter(self) -> TransporterSettings:
        return TransporterSettings(
            setup_port=self.setup_port,
            uplink_port=self.uplink_port,
            heartbeat_interval=self.heartbeat_interval,
            heartbeat_misses=self.heartbeat_misses,
            reconnect_backoff_cap=self.reconnect_backoff_cap,
            max_concurrent_tasks=self.max_concurrent_tasks,
        )


class SettingsError(ValueError):
    """A change was refused; ``str()`` is the message for the operator."""


def describe() -> dict[str, dict[str, Any]]:
    """The registry: per key its type, default, bounds, choices, description and when it applies."""
    schema = ExpertSettings.model_json_schema()
    out: dict[str, dict[str, Any]] = {}
    for key, prop in schema["properties"].items():
        entry: dict[str, Any] = {
            "type": prop.get("type", "string"),
            "default": prop.get("default"),
            "description": prop.get("description", ""),
            "applies": prop.get("applies", "live"),
        }
        for bound in ("minimum", "maximum", "enum"):
            if bound in prop:
                entry[bound] = prop[bound]
        if prop.get("secret"):
            entry["secret"] = True
            entry["default"] = ""
        out[key] = entry
    return out


def secret_keys() -> set[str]:
    """The write-only settings (passwords, tokens, keys)."""
    return {k for k, f in ExpertSettings.model_fields.items() if (f.json_schema_extra or {}).get("secret")}  # type: ignore[union-attr]


def public_values(settings: ExpertSettings) -> dict[str, Any]:
    """Every value as the API and pages show it: a secret is ``"********"`` when set, ``""`` when not."""
    values = settings.model_dump()
    for key in secret_keys():
        values[key] = SECRET_SET if values[key] else ""
    return values


def shown(key: str, value: Any) -> Any:
    """``value`` of ``key`` as events and logs may show it."""
    return (SECRET_SET if value else "") if key in secret_keys() else value


def allowed_text(key: str) -> str:
    d = describe()[key]
    if "enum" in d:
        return "one of " + ", ".join(map(str, d["enum"]))
    if "minimum" in d or "maximum" in d:
        return f"{d['type']} from {d.get('minimum', '-inf')} to {d.get('maximum', 'inf')}"
    return str(d["type"])


def apply_changes(current: ExpertSettings, changes: dict[str, Any]) -> ExpertSettings:
    """Validate ``changes`` against the registry and return the new settings (``current`` untouched)."""
    if not isinstance(changes, dict) or not changes:
        raise SettingsError("expected a non-empty JSON object of setting: value")
    known = ExpertSettings.model_fields
    unknown = sorted(k for k in changes if k not in known)
    if unknown:
        raise SettingsError(f"unknown setting(s) {', '.join(unknown)}; allowed settings: {', '.join(sorted(known))}")
    # A secret sent back as the mask it was shown as keeps its value.
    changes = {k: v for k, v in changes.items() if not (k in secret_keys() and v == SECRET_SET)}
    merged = current.model_dump() | changes
    try:
        return ExpertSettings.model_validate(merged, strict=False)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else "?"
            value = shown(key, changes.get(key))
            problems.append(f"{key}={value!r} refused ({err['msg']}); allowed: {allowed_text(key)}")
        raise SettingsError("; ".join(problems)) from None
