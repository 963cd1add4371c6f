"""Runs the job templates ``awx/configure.yml`` creates, through the AWX/AAP REST API (v2).

A run launches ``<prefix><title>`` (or, with ``awx_per_tenant_templates``, the tenant's own
``<prefix><tenant>: <title>``, whose tenant AWX fixes) with the run's extra vars as survey answers,
then follows the job: its events (``job_events``, the same shape as ansible-runner's) in counter
order and its status, until the job is finished and its events are all processed.

HTTP goes through the standard library in a worker thread; the token never appears in a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from tenantry.director.jobs.backend import Emit, JobError, JobOutcome, JobSpec
from tenantry.director.settings import ExpertSettings

FINISHED = {"successful", "failed", "error", "canceled"}
POLL = 1.0


class AwxError(JobError):
    """AWX refused or could not be reached."""


class AwxClient:
    def __init__(self, url: str, token: str, ca_pem: str = "", timeout: float = 30.0) -> None:
        if not url:
            raise AwxError("jobs_backend is awx but awx_url is not set (Expert Settings)")
        if not token:
            raise AwxError("jobs_backend is awx but awx_token is not set (Expert Settings)")
        self.base = url.rstrip("/")
        self._token = token
        self.timeout = timeout
        self.ctx = ssl.create_default_context(cadata=ca_pem or None)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        url = path if path.startswith("http") else self.base + path
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self._token)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.ctx) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:2000].decode(errors="replace")
            raise AwxError(f"AWX {method} {path}: HTTP {exc.code}: {_detail(detail)}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AwxError(f"AWX {method} {path}: cannot reach {self.base}: {reason}") from None
        return json.loads(raw) if raw else None

    def template(self, name: str) -> dict[str, Any]:
        found = self.request("GET", "/api/v2/job_templates/?" + urllib.parse.urlencode({"name": name}))
        results = (found or {}).get("results") or []
        if not results:
            raise AwxError(f"AWX has no job template named {name!r} (run awx/configure.yml)")
        template: dict[str, Any] = results[0]
        return template

    def launch(self, template: dict[str, Any], extra_vars: dict[str, Any]) -> dict[str, Any]:
        path = (template.get("related") or {}).get("launch") or f"/api/v2/job_templates/{template['id']}/launch/"
        job: dict[str, Any] = self.request("POST", path, {"extra_vars": extra_vars})
        return job

    def job(self, job_id: int) -> dict[str, Any]:
        job: dict[str, Any] = self.request("GET", f"/api/v2/jobs/{job_id}/")
        return job

    def events(self, job_id: int, after: int) -> list[dict[str, Any]]:
        """Every event with a counter above ``after``, in order (all pages)."""
        query = urllib.parse.urlencode({"counter__gt": after, "order_by": "counter", "page_size": 200})
        path: str | None = f"/api/v2/jobs/{job_id}/job_events/?{query}"
        out: list[dict[str, Any]] = []
        while path:
            page = self.request("GET", path) or {}
            out.extend(page.get("results") or [])
            path = page.get("next")
        return out

    def cancel(self, job_id: int) -> None:
        self.request("POST", f"/api/v2/jobs/{job_id}/cancel/", {})


def _detail(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(data, dict):
        return "; ".join(f"{k}: {v}" for k, v in data.items())[:300]
    return str(data)[:300]


class AwxBackend:
    name = "awx"

    def __init__(self, settings: Callable[[], ExpertSettings], poll: float = POLL) -> None:
        self._settings = settings
        self.poll = poll

    def template_name(self, spec: JobSpec) -> str:
        s = self._settings()
        if s.awx_per_tenant_templates and spec.tenant:
            return f"{s.awx_template_prefix}{spec.tenant}: {spec.title}"
        return f"{s.awx_template_prefix}{spec.title}"

    def extra_vars(self, spec: JobSpec) -> dict[str, Any]:
        """Survey answers only: AWX fixes the rest (cleanup in its template; the tenant in per-tenant
        templates; an audit run under AWX posts its findings to the Director itself)."""
        out = {k: v for k, v in spec.extravars.items() if k in ("tenant", "vms", "destination_vlan")}
        if self._settings().awx_per_tenant_templates:
            out.pop("tenant", None)
        if isinstance(out.get("vms"), list):
            out["vms"] = "\n".join(out["vms"])
        return out

    async def run(self, spec: JobSpec, emit: Emit, started: Callable[[str], None]) -> JobOutcome:
        s = self._settings()
        client = AwxClient(s.awx_url, s.awx_token, s.awx_ca_pem)
        template = await asyncio.to_thread(client.template, self.template_name(spec))
        job = await asyncio.to_thread(client.launch, template, self.extra_vars(spec))
        job_id = int(job.get("job") or job["id"])
        started(f"awx job {job_id}")
        counter = 0
        try:
            async with asyncio.timeout(spec.timeout):
                while True:
                    for event in await asyncio.to_thread(client.events, job_id, counter):
                        counter = max(counter, int(event.get("counter") or 0))
                        emit(event)
                    job = await asyncio.to_thread(client.job, job_id)
                    if job.get("status") in FINISHED and job.get("event_processing_finished", True):
                        for event in await asyncio.to_thread(client.events, job_id, counter):
                            counter = max(counter, int(event.get("counter") or 0))
                            emit(event)
                        break
                    await asyncio.sleep(self.poll)
        except (TimeoutError, asyncio.CancelledError) as exc:
            await asyncio.to_thread(_cancel_quietly, client, job_id)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return JobOutcome("failed", f"awx job {job_id}", None, f"stopped after {spec.timeout:.0f} s (jobs_timeout)")
        status = str(job.get("status"))
        message = "" if status == "successful" else str(job.get("job_explanation") or f"AWX job {job_id} {status}")
        return JobOutcome(
            "successful" if status == "successful" else ("canceled" if status == "canceled" else "failed"),
            f"awx job {job_id}",
            None,
            message[:500],
        )


def _cancel_quietly(client: AwxClient, job_id: int) -> None:
    with contextlib.suppress(AwxError):
        client.cancel(job_id)
