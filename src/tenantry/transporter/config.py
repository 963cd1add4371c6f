"""The Transporter's configuration (one typed object, loaded once) and its enrolled state on disk.

Configuration sources, later wins: defaults → TOML file (``--config``) →
environment (``TENANTRY_TRANSPORTER_<FIELD>``) → command-line flags.

The *state* (what enrollment and the Director told this Transporter) lives in
``<state_dir>``: ``transporter.json``, ``ca.crt``, ``client.crt`` and
``client.key`` (0600).  The Director updates it over the uplink (settings,
certificate renewal); nothing there is meant to be edited by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tenantry.common import pki
from tenantry.protocol.messages import TransporterSettings, split_target

ENV_PREFIX = "TENANTRY_TRANSPORTER_"


class ConfigError(ValueError):
    """Bad configuration; ``str()`` says what and where."""


class DirectConnectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    listen_host: str = "0.0.0.0"
    port: int = Field(default=9446, ge=0, le=65535)
    auth: Literal["certificate", "psk"] = "certificate"
    psk_file: Path | None = Field(default=None, description="file holding the pre-shared key (auth = psk)")
    max_connections: int = Field(default=32, ge=1, le=10000, description="Direct Connect connections at once")
    max_connections_per_source: int = Field(default=8, ge=1, le=10000, description="... from one IP address")
    proof_timeout: float = Field(default=5.0, gt=0, le=120, description="seconds a PSK peer has to prove itself")
    unproven_bytes: int = Field(
        default=65536, ge=4096, le=1 << 24, description="bytes a PSK peer may send before its proof"
    )
    control_frames_per_second: float = Field(default=100.0, gt=0, le=100000, description="PING/SETTINGS/RST/... budget")


class VSphereConfig(BaseModel):
    """The client site's vCenter (or ESXi) the Transporter backs up from and restores to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hostname: str = Field(min_length=1, max_length=253)
    port: int = Field(default=443, ge=1, le=65535)
    username: str = Field(min_length=1, max_length=200)
    password_file: Path = Field(description="file holding the vCenter password (never in this file)")
    ca_file: Path | None = Field(default=None, description="CA that signed the vCenter's certificate")
    insecure: bool = Field(default=False, description="skip certificate verification (labs only)")
    datacenter: str | None = None


class BackupConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vsphere: VSphereConfig | None = None
    staging_dir: Path | None = Field(default=None, description="default: <state_dir>/backup-staging")
    staging_bytes: int = Field(
        default=512 << 20, ge=16 << 20, le=1 << 42, description="changed segments staged before restic runs"
    )
    restic: str = Field(default="restic", description="the restic binary")
    site_repository: Path | None = Field(
        default=None, description="own repository at this site (tenants with their own standalone instance)"
    )


class TransporterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state_dir: Path = Path("/var/lib/tenantry-transporter")
    director_url: str | None = Field(None, description="https://director:4443; default: from the enrollment key")
    uplink: bool = Field(True, description="keep the uplink session to the Director (needs enrollment)")
    allow: list[str] = Field(default_factory=list, description="host:port resources the MSP may reach (tunnels)")
    repository_paths: list[Path] = Field(default_factory=list, description="reported with free space on dashboards")
    direct_connect: DirectConnectConfig = Field(default_factory=lambda: DirectConnectConfig())
    backup: BackupConfig = Field(default_factory=lambda: BackupConfig())
    backoff_base: float = Field(1.0, gt=0, le=60)
    log_level: str = "INFO"

    @field_validator("allow")
    @classmethod
    def _allow(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            host, port = split_target(item)
            out.append(f"{host}:{port}")
        return out

    def psk(self) -> str | None:
        path = self.direct_connect.psk_file
        if path is None:
            return None
        return path.read_text().strip()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tenantry-transporter", description="tenantry Transporter")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", type=Path, help="TOML configuration file")
        sp.add_argument("--state-dir", type=Path)
        sp.add_argument("--director-url")
        sp.add_argument("--log-level")

    enroll = sub.add_parser("enroll", help="enroll with one-time credentials, then exit")
    common(enroll)
    enroll.add_argument("--enrollment-key-file", type=Path, help="file holding the tnt1_… key (preferred)")
    enroll.add_argument("--enrollment-key", help="the tnt1_… key (visible in ps; prefer the file or env)")

    run = sub.add_parser("run", help="keep the uplink and/or the Direct Connect listener, forever")
    common(run)
    run.add_argument("--allow", action="append", help="host:port reachable through tunnels (repeatable)")
    run.add_argument("--repository-path", action="append", dest="repository_paths", type=Path)
    run.add_argument("--no-uplink", action="store_true", help="Direct Connect only")
    run.add_argument("--direct-connect", action="store_true", help="enable the Direct Connect listener")
    run.add_argument("--direct-connect-host")
    run.add_argument("--direct-connect-port", type=int)
    run.add_argument("--direct-connect-auth", choices=["certificate", "psk"])
    run.add_argument("--psk-file", type=Path)
    return p


def load_config(
    argv: list[str] | None = None, environ: dict[str, str] | None = None
) -> tuple[str, TransporterConfig, argparse.Namespace]:
    args = _parser().parse_args(argv)
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    config_file = args.config or (Path(env[ENV_PREFIX + "CONFIG"]) if ENV_PREFIX + "CONFIG" in env else None)
    if config_file is not None:
        try:
            values.update(tomllib.loads(config_file.read_text()))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file} is not valid TOML: {exc}") from None
    for name in ("state_dir", "director_url", "log_level"):
        if ENV_PREFIX + name.upper() in env:
            values[name] = env[ENV_PREFIX + name.upper()]
    if ENV_PREFIX + "ALLOW" in env:
        values["allow"] = [s.strip() for s in env[ENV_PREFIX + "ALLOW"].split(",") if s.strip()]
    for name in ("state_dir", "director_url", "log_level"):
        if getattr(args, name, None) is not None:
            values[name] = getattr(args, name)
    if args.command == "run":
        if args.allow:
            values["allow"] = args.allow
        if args.repository_paths:
            values["repository_paths"] = args.repository_paths
        if args.no_uplink:
            values["uplink"] = False
        dc = dict(values.get("direct_connect") or {})
        for flag, key in (
            ("direct_connect_host", "listen_host"),
            ("direct_connect_port", "port"),
            ("direct_connect_auth", "auth"),
            ("psk_file", "psk_file"),
        ):
            if getattr(args, flag) is not None:
                dc[key] = getattr(args, flag)
        if args.direct_connect:
            dc["enabled"] = True
        values["direct_connect"] = dc
    try:
        config = TransporterConfig.model_validate(values)
    except ValidationError as exc:
        lines = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid Transporter configuration:\n  " + "\n  ".join(lines)) from None
    if config.direct_connect.enabled and config.direct_connect.auth == "psk":
        if config.direct_connect.psk_file is None:
            raise ConfigError("direct_connect.auth = psk needs direct_connect.psk_file")
        try:
            psk = config.psk()
        except OSError as exc:
            raise ConfigError(f"cannot read the PSK file {config.direct_connect.psk_file}: {exc.strerror}") from None
        if not psk or len(psk) < 16:
            raise ConfigError("the pre-shared key must be at least 16 characters")
    return args.command, config, args


class State(BaseModel):
    """What enrollment and the Director told us; ``transporter.json`` in the state directory."""

    tenant_id: str
    director_url: str
    settings: TransporterSettings


class StateDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.state_file = path / "transporter.json"
        self.ca = path / "ca.crt"
        self.cert = path / "client.crt"
        self.key = path / "client.key"
        self.pending_key = path / "client.key.pending"
        self.direct_cert = path / "direct-self-signed.crt"
        self.direct_key = path / "direct-self-signed.key"

    @property
    def enrolled(self) -> bool:
        return self.state_file.exists() and self.cert.exists() and self.key.exists() and self.ca.exists()

    def load(self) -> State:
        try:
            return State.model_validate_json(self.state_file.read_text())
        except OSError as exc:
            msg = f"not enrolled: cannot read {self.state_file} ({exc.strerror}); run 'enroll' first"
            raise ConfigError(msg) from None
        except ValidationError as exc:
            raise ConfigError(f"{self.state_file} is damaged: {exc.errors()[0]['msg']}; enroll again") from None

    def save(self, state: State) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        pki.write_private(self.state_file, json.dumps(state.model_dump(mode="json"), indent=2).encode())
