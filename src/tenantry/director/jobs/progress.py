"""What a job's events say: progress per step and per VM, the RTO report, VM lists, audit findings.

The events are ansible-runner's (``ansible-runner run -j``) or AWX's ``job_events`` (the same
shape).  Nothing is computed here that the collection computes: the failover role follows its run
with ``tenantry.msp.failover_info`` (one loop item per step, with every step's and every VM's state)
and ends with the module's report; the listing and audit playbooks end with one task whose result
holds what they read.  This module only picks those results out of the stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_OK = ("runner_on_ok", "runner_item_on_ok", "runner_on_failed", "runner_item_on_failed")
MAX_TEXT = 4000


@dataclass
class Progress:
    """Accumulates one run's progress and results from its events."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    vms: dict[str, dict[str, str]] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    plan: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    task: str = ""
    error: str = ""
    report: dict[str, Any] | None = None
    summary: list[str] = field(default_factory=list)
    listing: dict[str, Any] | None = None
    audit: dict[str, Any] | None = None
    changed: bool = False  # whether the last event changed anything shown

    def progress(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "vms": self.vms,
            "run": self.run,
            "plan": self.plan,
            "lines": self.lines[-50:],
            "task": self.task,
            "error": self.error,
        }

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.report is not None:
            out["report"] = self.report
        if self.summary:
            out["summary"] = self.summary
        if self.listing is not None:
            out["listing"] = self.listing
        if self.audit is not None:
            out["audit"] = self.audit
        return out

    def feed(self, event: dict[str, Any]) -> None:
        self.changed = False
        kind = str(event.get("event", ""))
        data = event.get("event_data") or {}
        if kind == "playbook_on_task_start":
            self.task = str(data.get("task") or data.get("name") or "")[:200]
            self.changed = True
            return
        if kind not in _OK:
            return
        res = data.get("res")
        if not isinstance(res, dict):
            return
        if kind.endswith("_failed") and not data.get("ignore_errors"):
            msg = res.get("msg")
            if isinstance(msg, str) and msg:
                self.error = msg[:MAX_TEXT]
                self.changed = True
        self._follow(res)
        self._results(res)

    def _follow(self, res: dict[str, Any]) -> None:
        """A ``failover_info`` result: the run, its steps and every VM's state per step."""
        steps = res.get("steps")
        if isinstance(steps, list) and isinstance(res.get("run"), dict):
            self.steps = [_step(s) for s in steps if isinstance(s, dict)]
            run = res["run"]
            self.run = {k: run.get(k) for k in ("run_id", "mode", "flow", "status")}
            vms = res.get("vm_states")
            if isinstance(vms, dict):
                self.vms = {
                    str(vm): {str(k): str(v) for k, v in states.items()}
                    for vm, states in vms.items()
                    if isinstance(states, dict)
                }
            line = res.get("line")
            if isinstance(line, str) and line and line not in self.lines:
                self.lines.append(line[:500])
            plan = res.get("plan_lines")
            if isinstance(plan, list) and not self.plan:
                self.plan = [str(p)[:500] for p in plan[:200]]
            self.changed = True

    def _results(self, res: dict[str, Any]) -> None:
        report = res.get("report")
        if isinstance(report, dict) and "run_id" in report and "steps" in report:
            self.report = report
            summary = res.get("summary")
            if isinstance(summary, list):
                self.summary = [str(s)[:500] for s in summary]
            progress = res.get("progress")
            if isinstance(progress, list):
                self.lines = [str(p)[:500] for p in progress[-50:]]
            self._steps_from_report(report)
            self.changed = True
        listing = res.get("tenantry_vms")
        if isinstance(listing, dict):
            self.listing = listing
            self.changed = True
        audit = res.get("tenantry_audit")
        if isinstance(audit, dict):
            self.audit = audit
            self.changed = True

    def _steps_from_report(self, report: dict[str, Any]) -> None:
        """The final state of every step and VM, from the report (a run that ended between two follows)."""
        self.steps = [
            _step(
                {
                    "index": i,
                    "name": s.get("step"),
                    "title": s.get("step"),
                    "state": s.get("state"),
                    "done": s.get("done"),
                    "failed": s.get("failed"),
                    "skipped": s.get("skipped"),
                    "seconds": s.get("seconds"),
                }
            )
            for i, s in enumerate(report.get("steps") or [], 1)
            if isinstance(s, dict)
        ]
        titles = {s["name"]: s["title"] for s in self.steps}
        for s in self.steps:
            s["title"] = titles.get(s["name"], s["name"])
        vms = report.get("vms")
        if isinstance(vms, dict):
            self.vms = {
                str(vm): {str(step): str((st or {}).get("state")) for step, st in (rec.get("steps") or {}).items()}
                for vm, rec in vms.items()
                if isinstance(rec, dict)
            }
        self.run = dict(self.run, run_id=report.get("run_id"), status=report.get("status"), mode=report.get("mode"))


def _step(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "index": s.get("index"),
        "name": str(s.get("name") or ""),
        "title": str(s.get("title") or s.get("name") or ""),
        "state": str(s.get("state") or "pending"),
        "done": int(s.get("done") or 0),
        "failed": int(s.get("failed") or 0),
        "skipped": int(s.get("skipped") or 0),
        "seconds": s.get("seconds"),
    }


def event_row(event: dict[str, Any], fallback_seq: int) -> tuple[int, float, str, str, str, str]:
    """(seq, ts, event, task, host, text) to keep with the run."""
    import datetime as dt

    data = event.get("event_data") or {}
    seq = event.get("counter")
    created = event.get("created")
    ts = 0.0
    if isinstance(created, str):
        try:
            ts = dt.datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
        except ValueError:
            ts = 0.0
    text = str(event.get("stdout") or "")
    return (
        int(seq) if isinstance(seq, int) else fallback_seq,
        ts,
        str(event.get("event", ""))[:64],
        str(data.get("task") or "")[:200],
        str(data.get("host") or event.get("host_name") or "")[:200],
        text[:MAX_TEXT],
    )
