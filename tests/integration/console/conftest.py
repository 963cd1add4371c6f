"""Fixtures of the console and portal tests (consolesite.py builds the site)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import REPO

sys.path[:0] = [str(REPO / "tests" / "integration" / "services"), str(REPO / "tests" / "integration" / "failover")]

import failoverlab as fl  # noqa: E402
from consolesite import PASSWORD, SPECS, Mailbox, Site, Tenant, _connect, jobs_config  # noqa: E402
from services_harness import DirectorProc, TransporterProc, free_port, wait_for  # noqa: E402

from tenantry.lab import Endpoint, Simulator  # noqa: E402


@pytest.fixture(scope="module")
def site(
    vcenter: Endpoint, lab_binary: Path, lab_state_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    from aiosmtpd.controller import Controller

    root = tmp_path_factory.mktemp("console")
    simulators: list[Simulator] = []
    connections: list[Any] = []
    transporters: list[TransporterProc] = []
    controller: Controller | None = None
    director: DirectorProc | None = None
    try:
        vc_si = _connect(vcenter)
        connections.append(vc_si)
        tenants: dict[str, Tenant] = {}
        for key, name, tenant_id, vlan, destinations, vms in SPECS:
            simulator = Simulator(lab_binary)
            simulators.append(simulator)
            endpoint = simulator.start("esx", lab_state_dir, f"esx-{name}")
            data = fl.tenant_data(name, tenant_id, vlan, destination_vlans=destinations)
            spec = fl.tenant_spec(name, tenant_id, vlan, destination_vlans=destinations)
            target_si = _connect(endpoint)
            connections.append(target_si)
            fl.build_target(target_si, spec, vms)
            fl.add_portgroups(vc_si, spec)
            tenants[key] = Tenant(name, data, spec, endpoint, target_si, vms)
        inventory = fl.write_inventory(root / "inventory", vcenter, [(t.data, t.target) for t in tenants.values()])

        mailbox = Mailbox()
        smtp_port = free_port()
        controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
        controller.start()

        director = DirectorProc(root, {"alarm_check_interval": 0.5}, config=jobs_config(root, inventory)).start()
        director.api(
            "PUT",
            "/api/v1/settings",
            {
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp_port,
                "smtp_security": "none",
                "smtp_to": ["noc@msp.example"],
                "smtp_from": "director@msp.example",
                "portal_vms_max_age": 600,
            },
        )
        for key, t in tenants.items():
            transporter = TransporterProc(root, t.name)
            transporters.append(transporter)
            created = director.create_tenant(t.name, description=f"tenant {key.upper()}", workload_quota=10)
            enrolled = transporter.enroll(director, created["credentials"]["enrollment_key"])
            assert enrolled.returncode == 0, enrolled.stderr
            transporter.start()
            t.transporter = transporter
        wait_for(lambda: all(director.online(t.name) for t in tenants.values()), 30, "both Transporters online")
        director.api("PUT", "/api/v1/settings", {"alarm_offline_after": 2})  # once both are online
        users = {"msp-admin": "admin", "msp-operator": "operator", "msp-readonly": "readonly"}
        for user, role in users.items():
            director.api("POST", "/api/v1/users", {"username": user, "role": role, "password": PASSWORD})
        for t in tenants.values():
            user = f"{t.name}-user"
            director.api(
                "POST", "/api/v1/users", {"username": user, "role": "tenant", "tenant": t.name, "password": PASSWORD}
            )
            users[user] = "tenant"
        yield Site(root, director, vcenter, vc_si, tenants, mailbox, smtp_port, users)
    finally:
        for transporter in transporters:
            transporter.stop()
        if director is not None:
            director.stop()
        if controller is not None:
            controller.stop()
        from pyVim.connect import Disconnect

        for si in connections:
            Disconnect(si)
        for simulator in simulators:
            simulator.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (no browser is ever downloaded)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("Debian's chromium package is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def new_page(browser: Any, site: Site) -> Iterator[Callable[..., Any]]:
    """``new_page(width=1280)``: a page in its own browser context (its own cookies)."""
    contexts: list[Any] = []

    def make(width: int = 1280, height: int = 900) -> Any:
        context = browser.new_context(
            ignore_https_errors=True,  # the Director's own CA; TLS itself is real
            viewport={"width": width, "height": height},
            base_url=site.director.url,
        )
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
