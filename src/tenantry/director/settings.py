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
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tenantry.protocol.messages import TransporterSettings

Applies = Literal["live", "restart"]


def _f(default: Any, description: str, applies: Applies = "live", **bounds: Any) -> Any:
    return Field(default, description=description, json_schema_extra={"applies": applies}, **bounds)


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
        out[key] = entry
    return out


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
    merged = current.model_dump() | changes
    try:
        return ExpertSettings.model_validate(merged, strict=False)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else "?"
            value = changes.get(key)
            problems.append(f"{key}={value!r} refused ({err['msg']}); allowed: {allowed_text(key)}")
        raise SettingsError("; ".join(problems)) from None
