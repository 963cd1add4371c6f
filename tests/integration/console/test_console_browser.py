"""The console and the portal in a real browser (Debian's Chromium, headless, through Playwright), against a
real Director whose jobs run the collection's playbooks with ansible-runner on the vCenter simulator.

One site per module (conftest.py): tenants ``cpa`` (3 VMs, two destination VLANs) and ``cpb`` (2 VMs),
both Transporters online.  Screenshots go to tests/output/console/.
"""

from __future__ import annotations

import re
import shutil
import time
from typing import Any

import pytest
from consolesite import OUTPUT, REPO, Site, login, shot
from services_harness import wait_for

pytestmark = pytest.mark.integration

RUN_TIMEOUT = 180_000  # ms: a whole test failover under ansible-runner on a shared 2-core machine


def wait_vm_list(page: Any, vm: str) -> None:
    """The portal reads the VMs live (a job); the page reloads itself when the read is done."""
    page.get_by_role("row", name=re.compile(vm)).wait_for(timeout=RUN_TIMEOUT)


def run_to_end(page: Any) -> str:
    """Wait on a run page until its state is final; the page reloads itself then."""
    badge = page.locator(".runstate [data-state]")
    page.wait_for_function(
        "() => { const b = document.querySelector('.runstate [data-state]');"
        " return b && !['queued', 'running'].includes(b.dataset.state); }",
        timeout=RUN_TIMEOUT,
    )
    page.wait_for_load_state()
    return str(badge.get_attribute("data-state"))


def test_tenant_runs_a_test_failover_and_cleans_up(site: Site, new_page: Any) -> None:
    a, b = site.tenant("a"), site.tenant("b")
    page = new_page()
    login(page, f"{a.name}-user")
    assert page.url.endswith("/portal")
    wait_vm_list(page, a.vms[0])
    # Only its own VMs and networks.
    body = page.locator("main").inner_text()
    for vm in a.vms:
        assert vm in body
    for vm in b.vms:
        assert vm not in body
    assert "VLAN 2901" in body and "VLAN 2911" in body and "VLAN 2902" not in body
    assert page.get_by_role("checkbox", name=a.vms[0]).is_visible()

    # Tick two VMs, keep "test failover", push the big red button.
    chosen = a.vms[:2]
    for vm in chosen:
        page.get_by_role("checkbox", name=vm).check()
    page.get_by_label("VLAN 2911").check()
    assert not page.get_by_label(re.compile("type .* to confirm")).is_visible()  # only for a real failover
    shot(page, "portal")
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(r"/portal/runs/"))
    run_url = page.url
    assert page.get_by_text("Test failover of cpa").is_visible()
    # A second click while it runs shows the running one.
    second = new_page()
    login(second, f"{a.name}-user")
    for vm in chosen:
        second.get_by_role("checkbox", name=vm).check()
    second.get_by_role("button", name="Start").click()
    second.wait_for_url(re.compile(r"/portal/runs/"))
    assert second.url.split("?")[0] == run_url
    assert "in progress" in second.locator(".note").first.inner_text()

    # Live progress per step and per VM, then the RTO report drawn as a timeline.
    page.locator("table.steps").wait_for(timeout=RUN_TIMEOUT)
    assert run_to_end(page) == "successful"
    assert page.locator("table.vmgrid").get_by_role("rowheader", name=chosen[0]).is_visible()
    rto = page.locator(".rto").inner_text()
    assert re.search(r"RTO \d+\.\d s", rto), rto
    image = page.get_by_role("img", name=re.compile("Timeline of run"))
    assert image.is_visible()
    assert page.evaluate("(img) => img.naturalWidth", image.element_handle()) > 0
    shot(page, "portal-run")
    svg = page.request.get(run_url + "/timeline.svg")
    assert svg.ok and "RTO" in svg.text() and all(vm in svg.text() for vm in chosen)
    report = page.request.get(run_url + "/report.json").json()
    assert sorted(report["vms"]) == sorted(chosen) and report["rto_seconds"] > 0
    assert site.production_vms(a, "test-failover") == sorted(chosen)

    # The portal reads the VMs again after the run (its list predates it): the copies show.
    page.goto("/portal")
    page.get_by_role("row", name=re.compile("test copy")).first.wait_for(timeout=RUN_TIMEOUT)

    # Clean up, from the portal.
    page.get_by_role("button", name="Clean up the test failover").click()
    page.wait_for_url(re.compile(r"/portal/runs/"))
    assert page.url != run_url
    assert run_to_end(page) == "successful"
    assert site.production_vms(a, "test-failover") == []
    page.goto("/portal")
    assert page.get_by_role("link", name=run_url.rsplit("/", 1)[1]).is_visible()  # history
    # The list that showed the copies is read again; nothing offers a second clean-up meanwhile or after.
    assert page.get_by_role("button", name="Clean up the test failover").count() == 0
    page.wait_for_function(
        "() => !document.querySelector('main').innerText.includes('test copy')"
        " && !document.querySelector('main').innerText.includes('Reading your VMs')",
        timeout=RUN_TIMEOUT,
    )
    assert page.locator("table.vms").get_by_role("row", name=re.compile(a.vms[0])).is_visible()
    assert page.get_by_role("button", name="Clean up the test failover").count() == 0


def test_another_tenant_cannot_see_or_act_on_it(site: Site, new_page: Any) -> None:
    a, b = site.tenant("a"), site.tenant("b")
    runs = site.director.api("GET", f"/api/v1/tenants/{a.name}/runs")
    run_id = next(r["id"] for r in runs if r["kind"] == "test")
    page = new_page()
    login(page, f"{b.name}-user")
    wait_vm_list(page, b.vms[0])
    body = page.locator("main").inner_text()
    assert all(vm not in body for vm in a.vms) and run_id not in body
    # Pages, files and API routes of the other tenant's run: not found, as if it did not exist.
    for path in (f"/portal/runs/{run_id}", f"/portal/runs/{run_id}/report.json", f"/portal/runs/{run_id}/timeline.svg"):
        assert page.goto(path).status == 404, path
    for path in (f"/api/v1/portal/runs/{run_id}", f"/api/v1/portal/runs/{run_id}/events", "/api/v1/runs/" + run_id):
        assert page.request.get(path).status in (403, 404), path
    # The MSP side is closed to it.
    for path in ("/console", f"/console/tenants/{a.name}", f"/console/runs/{run_id}", "/api/v1/tenants", "/metrics"):
        assert page.request.get(path, max_redirects=0).status == 403, path
    # Acting on the other tenant's VMs, through the form or the API, with the tenant's own CSRF token.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    form = {"csrf_token": token, "mode": "test", "vms": a.vms[0], "tenant": a.name}
    refused = page.request.post("/portal/runs", form=form, max_redirects=0)
    assert refused.status == 422 and "Not one of your VMs" in refused.text()
    api = page.request.post(
        "/api/v1/portal/runs",
        data={"mode": "test", "vms": [a.vms[0]]},
        headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
    )
    assert api.status == 422
    tenant_field = page.request.post(
        "/api/v1/portal/runs",
        data={"mode": "test", "vms": [b.vms[0]], "tenant": a.name},
        headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
    )
    assert tenant_field.status == 422  # no request names a tenant
    started = page.request.post(
        f"/api/v1/tenants/{a.name}/runs",
        data={"kind": "test", "vms": [a.vms[0]]},
        headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
    )
    assert started.status == 403
    assert [r["id"] for r in site.director.api("GET", f"/api/v1/tenants/{a.name}/runs")] == [r["id"] for r in runs]


def test_tenant_fails_two_vms_over_with_the_big_red_button_and_back(site: Site, new_page: Any) -> None:
    b = site.tenant("b")
    page = new_page()
    login(page, f"{b.name}-user")
    wait_vm_list(page, b.vms[0])
    for vm in b.vms:
        page.get_by_role("checkbox", name=vm).check()
    page.get_by_label("Failover: move the VMs into production").check()
    confirm = page.get_by_label(re.compile("type .* to confirm"))
    assert confirm.is_visible()
    # The server checks the typed name (the field's `required` is only the browser's help).
    page.evaluate("document.getElementById('confirm').required = false")
    confirm.fill("not-the-name")
    page.get_by_role("button", name="Start").click()
    page.wait_for_load_state()
    assert "to confirm the failover" in page.get_by_role("alert").inner_text()
    assert site.director.api("GET", f"/api/v1/tenants/{b.name}/runs") == [] or all(
        r["kind"] == "vms" for r in site.director.api("GET", f"/api/v1/tenants/{b.name}/runs")
    )
    for vm in b.vms:
        page.get_by_role("checkbox", name=vm).check()
    page.get_by_label("Failover: move the VMs into production").check()
    page.get_by_label(re.compile("type .* to confirm")).fill(b.name)
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(r"/portal/runs/"))
    assert run_to_end(page) == "successful"
    assert "RTO" in page.locator(".rto").inner_text()
    assert site.production_vms(b) == sorted(b.vms)
    # The VMs are in production now: the portal offers the failback.
    page.get_by_role("button", name="Fail back to the replication targets").click()
    page.wait_for_url(re.compile(r"/portal/runs/"))
    assert run_to_end(page) == "successful"
    assert site.production_vms(b) == []
    assert "All VMs back on their replication target" in page.locator(".rto").inner_text()


def test_operator_sees_the_fleet_and_the_offline_alarm_and_its_email(site: Site, new_page: Any) -> None:
    a, b = site.tenant("a"), site.tenant("b")
    page = new_page()
    login(page, "msp-operator")
    assert page.url.endswith("/console")
    table = page.locator("table.fleet")
    for t in (a, b):
        row = table.get_by_role("row", name=re.compile(t.name))
        assert "online" in row.inner_text()
    a_row = table.get_by_role("row", name=re.compile(a.name)).inner_text()
    assert "successful" in a_row and "RTO" in a_row  # the tenant's test failover, seen by the operator
    shot(page, "fleet")

    assert b.transporter is not None
    b.transporter.stop()
    # The page updates itself (polling with ETag): offline, then an alarm.
    table.get_by_role("row", name=re.compile(b.name)).locator(".badge.offline").wait_for(timeout=30_000)
    table.get_by_role("row", name=re.compile(b.name)).locator("a.badge.alarm").wait_for(timeout=30_000)
    page.get_by_role("link", name="Alarms", exact=True).click()
    alarm = page.locator("table.alarms").get_by_role("row", name=re.compile(f"tenant {b.name} has been offline"))
    assert alarm.is_visible()
    shot(page, "alarms")
    wait_for(lambda: any(b.name in s and "RAISED" in s for s in site.mailbox.subjects()), 30, "the alarm e-mail")
    alarm.get_by_role("button", name=re.compile("Acknowledge")).click()
    page.wait_for_load_state()
    acked = page.locator("table.alarms").get_by_role("row", name=re.compile(f"tenant {b.name} has been offline"))
    assert "msp-operator" in acked.inner_text()

    # Back online: the alarm clears (and the clearing is mailed too).
    b.transporter.start()
    wait_for(lambda: site.director.online(b.name), 30, "the Transporter back")
    wait_for(
        lambda: not any(x["kind"] == "transporter_offline" for x in site.director.api("GET", "/api/v1/alarms")),
        30,
        "the alarm cleared",
    )
    wait_for(lambda: any("CLEARED" in s and b.name in s for s in site.mailbox.subjects()), 30, "the clear e-mail")


def test_readonly_sees_but_cannot_act_and_csrf_and_session_expiry_hold(site: Site, new_page: Any) -> None:
    a = site.tenant("a")
    page = new_page(width=390, height=844)  # a phone
    login(page, "msp-readonly")
    page.goto(f"/console/tenants/{a.name}")
    assert page.get_by_role("heading", name=f"Tenant {a.name}").is_visible()
    assert page.get_by_role("button", name="Revoke").count() == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # no page-wide sideways scroll
    shot(page, "tenant-phone")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = page.request.post(f"/console/tenants/{a.name}/renew", form={"csrf_token": token}, max_redirects=0)
    assert refused.status == 403

    operator = new_page()
    login(operator, "msp-operator")
    operator.goto(f"/console/tenants/{a.name}")
    # Without the CSRF token, or with another session's, a state-changing request is refused.
    assert operator.request.post(f"/console/tenants/{a.name}/renew", form={}, max_redirects=0).status == 403
    forged = operator.request.post(f"/console/tenants/{a.name}/renew", form={"csrf_token": token}, max_redirects=0)
    assert forged.status == 403
    assert operator.request.post("/api/v1/alarms/1/ack", max_redirects=0).status == 403
    # Keyboard only: the first Tab reaches the skip link, Enter on a focused button submits its form.
    operator.keyboard.press("Tab")
    assert operator.evaluate("document.activeElement.textContent") == "Skip to content"
    operator.get_by_role("button", name="Renew the certificate now").focus()
    operator.keyboard.press("Enter")
    operator.wait_for_load_state()
    assert "Certificate renewed" in operator.locator(".note").inner_text()

    # Idle expiry: a session unused longer than session_idle_timeout is gone.
    site.director.api("PUT", "/api/v1/settings/session_idle_timeout", {"value": 5})
    try:
        time.sleep(6)
        operator.goto(f"/console/tenants/{a.name}")
        assert "/login" in operator.url
        assert operator.get_by_text("Your session ended").is_visible()
        assert operator.request.get("/api/v1/fleet").status == 401
    finally:
        site.director.api("PUT", "/api/v1/settings/session_idle_timeout", {"value": 1800})
    # Logging out ends the session on the server: its cookie is worth nothing afterwards.
    login(operator, "msp-operator")
    cookie = next(c for c in operator.context.cookies() if c["name"] == "__Host-tenantry-session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    operator.get_by_role("button", name="Log out").click()
    operator.wait_for_url(re.compile("/login"))
    operator.context.add_cookies([cookie])
    assert operator.request.get("/api/v1/fleet").status == 401


def test_screenshots_for_the_docs(site: Site) -> None:
    """The fleet and portal pictures in docs/ are the ones this run took (TENANTRY_DOCS_SCREENSHOTS=1 copies them)."""
    import os

    if os.environ.get("TENANTRY_DOCS_SCREENSHOTS") != "1":
        pytest.skip("set TENANTRY_DOCS_SCREENSHOTS=1 to refresh docs/images/")
    for name in ("fleet", "portal", "portal-run", "alarms", "tenant-phone"):
        shutil.copy(OUTPUT / f"{name}.png", REPO / "docs" / "images" / f"console-{name}.png")
