"""The Director's configuration: one typed object, loaded once.

Sources, later wins: defaults → TOML file (``--config``) → environment
(``TENANTRY_DIRECTOR_<FIELD>``) → command-line flags.  ``setup_port`` and
``uplink_port`` here only *seed* the Expert Settings on the first start; after
that the Expert Settings stored in the state directory are the truth (change
them through the REST API).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ENV_PREFIX = "TENANTRY_DIRECTOR_"


class ConfigError(ValueError):
    """Bad configuration; ``str()`` says what and where."""


class JobsConfig(BaseModel):
    """Where the collection's playbooks run from (``[jobs]`` in the TOML file).

    The same code runs jobs in the lab and tests (the controller's checkout and inventory) and on a
    Director host (the virtualenv the ``director`` role installs, the site's inventory).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(False, description="run jobs at all (the portal's buttons, VM lists, the audit)")
    ansible_runner: Path = Field(
        Path("/opt/tenantry/jobs/bin/ansible-runner"), description="the ansible-runner executable of the jobs venv"
    )
    project_dir: Path | None = Field(
        None, description="directory holding playbooks/ (a collection checkout); none: playbooks by FQCN"
    )
    inventory: list[Path] = Field(default_factory=list, description="inventory sources (files or directories)")
    env: dict[str, str] = Field(default_factory=dict, description="environment of every job (ANSIBLE_*, VMWARE_*)")
    extravars: dict[str, Any] = Field(
        default_factory=dict, description="extra vars of every job, e.g. failover_journal_dir"
    )
    data_dir: Path | None = Field(None, description="runs' artifacts and reports; default <state_dir>/jobs")
    keep_runs: int = Field(1000, ge=10, le=1000000, description="artifact directories kept per tenant")


class DirectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state_dir: Path = Field(Path("/var/lib/tenantry-director"), description="CA, keys, admin token and SQLite DB")
    listen_host: str = Field("0.0.0.0", description="address both listeners bind")
    server_names: list[str] = Field(
        default_factory=lambda: ["localhost", "127.0.0.1"],
        description="DNS names / IP addresses in the Director's server certificate",
    )
    public_url: str | None = Field(
        None, description="setup URL put into enrollment keys, e.g. https://dir.example:4443"
    )
    setup_port: int | None = Field(None, ge=0, le=65535, description="seeds Expert Settings on first start")
    uplink_port: int | None = Field(None, ge=0, le=65535, description="seeds Expert Settings on first start")
    admin_token_file: Path | None = Field(None, description="default: <state_dir>/admin.token, created 0600")
    tunnel_bind: str = Field("127.0.0.1", description="address tunnel ports listen on for MSP tools")
    argon2_memory_kib: int = Field(19456, ge=8, le=4 << 20, description="Argon2id memory cost (OWASP: 19 MiB)")
    argon2_iterations: int = Field(2, ge=1, le=100)
    log_level: str | None = Field(None, description="overrides the Expert Setting log_level at start")
    access_log: bool = False
    repository_root: Path | None = Field(
        None, description="tenants' backup repositories at the MSP (default: <state_dir>/repositories)"
    )
    secondary_repository_root: Path | None = Field(
        None, description="3-2-1: where the verified copies go (another disk or host mount); none: no copies"
    )
    restic_binary: str = Field("restic", description="the restic program (Debian's restic package)")
    seed_settings: dict[str, Any] = Field(
        default_factory=dict, description="Expert Settings applied on first start only (e.g. heartbeat_interval)"
    )
    database_url: str | None = Field(
        None,
        description="PostgreSQL (libpq URL, e.g. postgresql://tenantry@db/tenantry?passfile=/etc/tenantry/pgpass) "
        "shared by several Directors; default: SQLite in the state directory",
        pattern=r"^postgres(ql)?://",
    )

    peer_port: int = Field(
        4444, ge=0, le=65535, description="several Directors: the mutual-TLS port other Directors forward requests to"
    )
    peer_address: str | None = Field(
        None,
        description="several Directors: the address other Directors reach this one at (default: listen_host when "
        "it is one address, else this host's name); added to the server certificate's names",
    )
    node_name: str | None = Field(None, description="this Director's name in the cluster (default: peer_address)")
    jobs: JobsConfig = Field(
        default_factory=lambda: JobsConfig.model_validate({}), description="how jobs run (the [jobs] table)"
    )

    @property
    def admin_token_path(self) -> Path:
        return self.admin_token_file or self.state_dir / "admin.token"

    @property
    def db_path(self) -> Path:
        return self.state_dir / "director.db"

    @property
    def database(self) -> Path | str:
        """What the store opens: the PostgreSQL URL, or the SQLite file in the state directory."""
        return self.database_url or self.db_path

    @property
    def clustered(self) -> bool:
        return self.database_url is not None

    @property
    def advertised_peer_address(self) -> str:
        if self.peer_address:
            return self.peer_address
        if self.listen_host not in ("0.0.0.0", "::", ""):
            return self.listen_host
        return socket.gethostname()

    @property
    def ports_path(self) -> Path:
        """Where the Director publishes the ports it listens on (read by the role and the firewall)."""
        return self.state_dir / "ports.json"

    @property
    def jobs_dir(self) -> Path:
        return self.jobs.data_dir or self.state_dir / "jobs"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tenantry-director", description="tenantry Director (control plane)")
    p.add_argument("--config", type=Path, help="TOML configuration file")
    p.add_argument("--state-dir", type=Path)
    p.add_argument("--listen-host")
    p.add_argument("--server-name", action="append", dest="server_names", help="repeatable")
    p.add_argument("--public-url")
    p.add_argument("--setup-port", type=int)
    p.add_argument("--uplink-port", type=int)
    p.add_argument("--admin-token-file", type=Path)
    p.add_argument("--database-url", help="PostgreSQL URL (put the password in a passfile, not here)")
    p.add_argument("--peer-port", type=int)
    p.add_argument("--peer-address")
    p.add_argument("--node-name")
    p.add_argument("--log-level")
    p.add_argument(
        "--seed-setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Expert Setting applied on first start only (repeatable)",
    )
    return p


def _env_values(environ: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in DirectorConfig.model_fields:
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is None:
            continue
        out[name] = [s.strip() for s in raw.split(",") if s.strip()] if name == "server_names" else raw
    return out


def load_config(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> DirectorConfig:
    args = _parser().parse_args(argv)
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    env_file = env.get(ENV_PREFIX + "CONFIG")
    config_file: Path | None = args.config or (Path(env_file) if env_file else None)
    if config_file is not None:
        try:
            values.update(tomllib.loads(config_file.read_text()))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file} is not valid TOML: {exc}") from None
    values.update(_env_values(env))
    for key, value in vars(args).items():
        if key in ("config", "seed_setting") or value is None:
            continue
        values[key] = value
    seeds = dict(values.get("seed_settings") or {})
    for item in args.seed_setting:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--seed-setting {item!r}: expected KEY=VALUE")
        value = value.strip()
        if value[:1] in "[{":  # a list or table (e.g. trusted_proxies=["10.0.0.5/32"]) is JSON
            try:
                seeds[key.strip()] = json.loads(value)
                continue
            except ValueError:
                raise ConfigError(f"--seed-setting {item!r}: the value is not valid JSON") from None
        seeds[key.strip()] = value
    if seeds:
        values["seed_settings"] = seeds
    try:
        return DirectorConfig.model_validate(values)
    except ValidationError as exc:
        lines = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        where = f" (from {config_file}, environment or flags)" if config_file else ""
        raise ConfigError("invalid Director configuration" + where + ":\n  " + "\n  ".join(lines)) from None
