"""Helpers of the console and portal tests: a provider site, shared by a module: the session's vCenter
simulator, one ESX simulator per tenant as its replication target (with VMs on its NFS datastore),
an inventory like inventories/lab, a Director process whose jobs run the collection's playbooks with
ansible-runner on that inventory, both tenants' Transporters online, users of every role, and a real
SMTP listener on loopback (aiosmtpd) for the alarm e-mails.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from support import REPO, ansible_env

sys.path[:0] = [str(REPO / "tests" / "integration" / "services"), str(REPO / "tests" / "integration" / "failover")]

import failoverlab as fl  # noqa: E402
from services_harness import DirectorProc, TransporterProc  # noqa: E402

from tenantry.director.config import JobsConfig  # noqa: E402
from tenantry.lab import Endpoint  # noqa: E402

PASSWORD = "correct horse battery staple"
OUTPUT = REPO / "tests" / "output" / "console"


@dataclass
class Tenant:
    name: str
    data: dict[str, Any]
    spec: dict[str, Any]
    target: Endpoint
    target_si: Any
    vms: list[str]
    transporter: TransporterProc | None = None


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd handler hook
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def subjects(self) -> list[str]:
        with self.lock:
            return [str(m["Subject"]) for m in self.messages]


@dataclass
class Site:
    root: Path
    director: DirectorProc
    vcenter: Endpoint
    vc_si: Any
    tenants: dict[str, Tenant]
    mailbox: Mailbox
    smtp_port: int
    users: dict[str, str]  # user -> role

    def tenant(self, key: str) -> Tenant:
        return self.tenants[key]

    def production_vms(self, tenant: Tenant, sub: str = "") -> list[str]:
        folder = fl.tenant_folder(self.vc_si, tenant.spec, sub)
        if folder is None:
            return []
        return sorted(n for n, vm in fl.vms_of(self.vc_si, folder).items() if vm.parent == folder)


def _connect(endpoint: Endpoint) -> Any:
    from pyVim.connect import SmartConnect

    return SmartConnect(
        host=endpoint.hostname,
        port=endpoint.port,
        user=endpoint.username,
        pwd=endpoint.password,
        sslContext=endpoint.ssl_context(),
    )


def runner_config(project: Path, env: dict[str, str] | None = None) -> JobsConfig:
    """The Director's ansible-runner back end on ``project`` (its playbooks/), localhost as inventory."""
    base = {k: v for k, v in ansible_env().items() if k in ("ANSIBLE_CONFIG", "ANSIBLE_COLLECTIONS_PATH")}
    return JobsConfig.model_validate(
        {
            "enabled": True,
            "ansible_runner": str(Path(sys.executable).parent / "ansible-runner"),
            "project_dir": str(project),
            "inventory": [str(REPO / "tests" / "integration" / "console" / "localhost.yml")],
            "env": base | (env or {}),
        }
    )


def jobs_config(root: Path, inventory: Path) -> str:
    env = {
        k: v for k, v in ansible_env().items() if k in ("ANSIBLE_CONFIG", "ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_NOCOLOR")
    }
    lines = [
        "[jobs]",
        "enabled = true",
        f'ansible_runner = "{Path(sys.executable).parent / "ansible-runner"}"',
        f'project_dir = "{REPO}"',
        f'inventory = ["{inventory}"]',
        "[jobs.env]",
        *(f'{k} = "{v}"' for k, v in env.items()),
        "[jobs.extravars]",
        f'failover_journal_dir = "{root / "journal"}"',
        f'failover_report_dir = "{root / "reports"}"',
        "failover_check_account = false",
    ]
    return "\n".join(lines) + "\n"


SPECS = (
    # key, name, id, replication VLAN, destination VLANs, VMs
    ("a", "cpa", 901, 1901, [2901, 2911], ["cpa-dc01", "cpa-sql01", "cpa-app01"]),
    ("b", "cpb", 902, 1902, [2902], ["cpb-web01", "cpb-db01"]),
)


def login(page: Any, user: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def shot(page: Any, name: str) -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
