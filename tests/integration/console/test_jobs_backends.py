"""The two job backends without a browser.

AWX cannot run on this machine, so its client is tested against recorded AWX API answers
(``awx_recorded/``: written by hand after the AWX 24 API as the awx.awx collection uses it, not
captured from a live AWX) served over real TLS by a replaying server; the ansible-runner backend runs
real ansible-runner, and proves that what a user typed is never templated.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from consolesite import runner_config

from tenantry.director.config import JobsConfig
from tenantry.director.jobs.awx import AwxBackend, AwxError
from tenantry.director.jobs.backend import JobSpec
from tenantry.director.jobs.progress import Progress
from tenantry.director.jobs.runner import RunnerBackend
from tenantry.director.settings import ExpertSettings, apply_changes
from tenantry.lab import ensure_tls

pytestmark = pytest.mark.integration
RECORDED = Path(__file__).parent / "awx_recorded"


class Replay(http.server.BaseHTTPRequestHandler):
    """Answers each request with the next recorded exchange; a request out of order fails the test."""

    exchanges: list[dict[str, Any]] = []
    seen: list[tuple[str, str, dict[str, str], Any]] = []
    errors: list[str] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        Replay.seen.append((self.command, self.path, dict(self.headers), body))
        if not Replay.exchanges:
            Replay.errors.append(f"unexpected {self.command} {self.path}")
            self.send_response(500)
            self.end_headers()
            return
        want = Replay.exchanges.pop(0)
        if (want["method"], want["path"]) != (self.command, self.path):
            Replay.errors.append(f"expected {want['method']} {want['path']}, got {self.command} {self.path}")
        payload = json.dumps(want["body"]).encode()
        self.send_response(want["status"])
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def awx(lab_state_dir: Path) -> Iterator[tuple[str, str]]:
    tls = ensure_tls(lab_state_dir)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Replay)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Replay.seen.clear()
    Replay.errors.clear()
    try:
        yield f"https://127.0.0.1:{server.server_port}", Path(tls.ca_file).read_text()
    finally:
        server.shutdown()


def spec(tmp_path: Path, kind: str, title: str, **extravars: Any) -> JobSpec:
    return JobSpec(
        run_id="r1",
        kind=kind,
        playbook=f"{kind}.yml",
        title=title,
        tenant="rnr1",
        extravars={"tenant": "rnr1", **extravars},
        timeout=60,
        directory=tmp_path / "run",
        unsafe={"tenant", "vms"},
    )


def test_awx_backend_launches_the_tenants_template_and_follows_its_events(awx: tuple[str, str], tmp_path: Path) -> None:
    url, ca = awx
    Replay.exchanges = json.loads((RECORDED / "test_failover_per_tenant.json").read_text())["exchanges"]
    settings = apply_changes(
        ExpertSettings(),
        {
            "jobs_backend": "awx",
            "awx_url": url,
            "awx_token": "awx-token-1",
            "awx_ca_pem": ca,
            "awx_per_tenant_templates": True,
        },
    )
    backend = AwxBackend(lambda: settings, poll=0.05)
    events: list[dict[str, Any]] = []
    refs: list[str] = []
    outcome = asyncio.run(
        backend.run(spec(tmp_path, "test", "test failover", vms=["rnr1-vm01", "rnr1-vm02"]), events.append, refs.append)
    )
    assert Replay.errors == [] and Replay.exchanges == []
    assert outcome.status == "successful" and refs == ["awx job 4711"]
    assert [e["counter"] for e in events] == [1, 2, 3, 4, 5]  # every event once, in order, across pages
    launch = next(body for method, path, _h, body in Replay.seen if method == "POST")
    assert launch == {"extra_vars": {"vms": "rnr1-vm01\nrnr1-vm02"}}  # the tenant is fixed by AWX, not sent
    assert all(h["Authorization"] == "Bearer awx-token-1" for _m, _p, h, _b in Replay.seen)
    progress = Progress()
    for event in events:
        progress.feed(event)
    assert progress.result()["report"]["rto_seconds"] > 0
    assert set(progress.progress()["vms"]) == {"rnr1-vm01", "rnr1-vm02"}


def test_awx_refusal_is_reported_without_the_token(awx: tuple[str, str], tmp_path: Path) -> None:
    url, ca = awx
    Replay.exchanges = json.loads((RECORDED / "failover_refused.json").read_text())["exchanges"]
    settings = apply_changes(
        ExpertSettings(), {"jobs_backend": "awx", "awx_url": url, "awx_token": "awx-token-2", "awx_ca_pem": ca}
    )
    with pytest.raises(AwxError) as refused:
        asyncio.run(
            AwxBackend(lambda: settings).run(
                spec(tmp_path, "failover", "failover", destination_vlan=5000), lambda e: None, lambda r: None
            )
        )
    assert "HTTP 400" in str(refused.value) and "destination_vlan" in str(refused.value)
    assert "awx-token-2" not in str(refused.value)
    launch = next(body for method, _p, _h, body in Replay.seen if method == "POST")
    assert launch["extra_vars"]["tenant"] == "rnr1"  # shared templates take the tenant as a survey answer
    without_ca = apply_changes(ExpertSettings(), {"jobs_backend": "awx", "awx_url": url, "awx_token": "t"})
    with pytest.raises(AwxError, match="cannot reach"):
        asyncio.run(
            AwxBackend(lambda: without_ca).run(spec(tmp_path, "vms", "tenant VMs"), lambda e: None, lambda r: None)
        )


def test_runner_backend_never_templates_what_a_user_typed(tmp_path: Path) -> None:
    """A real ansible-runner run of a playbook that prints its extra vars: a template stays text."""
    project = tmp_path / "project"
    (project / "playbooks").mkdir(parents=True)
    (project / "playbooks" / "echo.yml").write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.debug:\n        msg: '{{ vms | join(\",\") }}|{{ tenant }}|{{ cleanup }}'\n"
    )
    config = runner_config(project)
    events: list[dict[str, Any]] = []
    job = spec(tmp_path, "echo", "echo", vms=["{{ 6 * 7 }}", "vm-{{ lookup('env', 'HOME') }}"], cleanup=True)
    outcome = asyncio.run(RunnerBackend(config).run(job, events.append, lambda ref: None))
    assert outcome.status == "successful", outcome.message
    messages = [e["event_data"]["res"]["msg"] for e in events if e["event"] == "runner_on_ok"]
    assert messages == ["{{ 6 * 7 }},vm-{{ lookup('env', 'HOME') }}|rnr1|True"]
    assert (tmp_path / "run" / "env" / "extravars").stat().st_mode & 0o077 == 0
    assert (tmp_path / "run" / "artifacts" / "job" / "job_events").is_dir()  # kept with the run


def test_runner_backend_refuses_when_not_configured(tmp_path: Path) -> None:
    off = JobsConfig.model_validate({})
    with pytest.raises(Exception, match="not enabled"):
        asyncio.run(RunnerBackend(off).run(spec(tmp_path, "vms", "tenant VMs"), lambda e: None, lambda r: None))
    missing = JobsConfig.model_validate({"enabled": True, "ansible_runner": str(tmp_path / "nope")})
    with pytest.raises(Exception, match="not an executable"):
        asyncio.run(RunnerBackend(missing).run(spec(tmp_path, "vms", "tenant VMs"), lambda e: None, lambda r: None))
