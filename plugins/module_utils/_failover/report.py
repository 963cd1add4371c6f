# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""The RTO report of a run, built from its journal: JSON for machines, a summary for people.

Times are seconds since the run was first started (``created``), across resumed attempts,
because the outage a tenant sees starts with the first attempt.  The RTO is the time until
every VM of the run is powered on; ``relocated_seconds`` the time until every VM is on
production storage (failover); ``on_target_seconds`` until every VM is registered back
on its replication target (failback).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._failover.journal import atomic_write_json

MILESTONES = {
    "failover": (
        ("rto_seconds", "power_on", "RTO (start to all powered on)"),
        ("relocated_seconds", "relocate", "all relocated to production storage after"),
    ),
    "test": (("rto_seconds", "power_on", "RTO (start to all copies powered on)"),),
    "failback": (("on_target_seconds", "register", "all registered on the replication target after"),),
    "cleanup": (),
}


def iso(stamp: float | None) -> str | None:
    if not stamp:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + ".%03dZ" % int((stamp % 1) * 1000)


def _rel(stamp: float | None, origin: float) -> float | None:
    return round(stamp - origin, 3) if stamp else None


def build(data: dict[str, Any]) -> dict[str, Any]:
    """The report of a journal (``Journal.data``)."""
    origin = float(data["created"])
    flow = data.get("flow") or data["mode"]
    order = data.get("steps_order") or list(data["steps"])
    vms, skipped, retried, failed = _vm_rows(data, order, origin)
    report: dict[str, Any] = {
        "run_id": data["run_id"],
        "tenant": data["tenant"],
        "mode": data["mode"],
        "flow": flow,
        "status": data["status"],
        "started": iso(origin),
        "ended": iso(data.get("updated")) if data["status"] in ("done", "failed", "rolled_back") else None,
        "seconds": round(float(data.get("updated", origin)) - origin, 3),
        "attempts": [
            {
                "started": iso(a.get("started")),
                "ended": iso(a.get("ended")),
                "result": a.get("result"),
                "message": a.get("message", ""),
                "resumed": a.get("resumed", False),
            }
            for a in data.get("attempts", [])
        ],
        "plan": data.get("plan", {}),
        "steps": [_step_row(name, data["steps"].get(name) or {"state": "pending"}, origin) for name in order],
        "vms": vms,
        "skipped": skipped,
        "retried": retried,
        "failed": failed,
    }
    for key, step, _label in MILESTONES.get(flow, ()):
        report[key] = _milestone(data, step, origin)
    return report


def _step_row(name: str, rec: dict[str, Any], origin: float) -> dict[str, Any]:
    return {
        "step": name,
        "state": rec.get("state", "pending"),
        "started": iso(rec.get("started")),
        "ended": iso(rec.get("ended")),
        "start_offset": _rel(rec.get("started"), origin),
        "end_offset": _rel(rec.get("ended"), origin),
        "seconds": rec.get("seconds"),
        "done": rec.get("done", 0),
        "failed": rec.get("failed", 0),
        "skipped": rec.get("skipped", 0),
        "retried": rec.get("retried", 0),
        "detail": rec.get("detail", ""),
        "error": rec.get("error"),
    }


def _vm_rows(
    data: dict[str, Any], order: list[str], origin: float
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Per VM and step: state, times, attempts, reason, error; and the skipped, retried, failed lists."""
    vms: dict[str, Any] = {}
    skipped, retried, failed = [], [], []
    for name, rec in data["vms"].items():
        per_step = {}
        for step in order:
            st = rec.get("steps", {}).get(step)
            if not st:
                continue
            per_step[step] = {
                "state": st.get("state"),
                "started": iso(st.get("started")),
                "ended": iso(st.get("ended")),
                "start_offset": _rel(st.get("started"), origin),
                "end_offset": _rel(st.get("ended"), origin),
                "attempts": st.get("attempts", 0),
            }
            for key in ("reason", "reconciled", "error"):
                if st.get(key):
                    per_step[step][key] = True if key == "reconciled" else st[key]
            if st.get("state") == "skipped" and step != "read":
                skipped.append({"vm": name, "step": step, "reason": st.get("reason", "")})
            if st.get("attempts", 0) > 1:
                retried.append({"vm": name, "step": step, "attempts": st["attempts"]})
            if st.get("state") == "failed":
                failed.append({"vm": name, "step": step, "error": st.get("error", "")})
        vms[name] = {"origin": rec.get("origin"), "vmx": rec.get("vmx"), "steps": per_step}
    return vms, skipped, retried, failed


def _milestone(data: dict[str, Any], step: str, origin: float) -> float | None:
    """Seconds from the start until every VM finished ``step`` (done, or already there); None if not all did."""
    latest = 0.0
    if not data["vms"]:
        return None
    for rec in data["vms"].values():
        st = rec.get("steps", {}).get(step)
        if not st or st.get("state") not in ("done", "skipped") or not st.get("ended"):
            return None
        if st.get("state") == "skipped" and "failed" in str(st.get("reason", "")):
            return None
        latest = max(latest, float(st["ended"]))
    return round(latest - origin, 3)


def write(report_dir: str, report: dict[str, Any]) -> Path:
    path: Path = Path(report_dir).expanduser() / str(report["tenant"]) / ("%s.json" % report["run_id"])
    atomic_write_json(path, report, indent=1)  # written once per run, read by people too
    return path


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The readable summary printed at the end of a run."""
    vm_count = len(report["vms"])
    attempts = len(report["attempts"])
    lines = [
        "%s of tenant %s, run %s: %s, %d VM%s, %d attempt%s, %.1f s"
        % (
            report["mode"],
            report["tenant"],
            report["run_id"],
            report["status"],
            vm_count,
            "" if vm_count == 1 else "s",
            attempts,
            "" if attempts == 1 else "s",
            report["seconds"],
        )
    ]
    for key, _step, label in MILESTONES.get(report["flow"], ()):
        value = report.get(key)
        lines.append("  %s: %s" % (label, "%.1f s" % value if value is not None else "not reached"))
    lines.append(
        "  %-3s %-12s %8s %8s %5s %5s %5s %5s" % ("#", "step", "start", "seconds", "done", "fail", "skip", "retry")
    )
    for index, step in enumerate(report["steps"], 1):
        start = step["start_offset"]
        lines.append(
            "  %-3d %-12s %8s %8s %5s %5s %5s %5s"
            % (
                index,
                step["step"],
                "+%.2f" % start if start is not None else "-",
                "%.2f" % step["seconds"] if step.get("seconds") is not None else step["state"],
                step["done"],
                step["failed"],
                step["skipped"],
                step["retried"],
            )
        )
    for label, items, fmt in (
        ("skipped", report["skipped"], "%(vm)s %(step)s (%(reason)s)"),
        ("retried", report["retried"], "%(vm)s %(step)s (%(attempts)d attempts)"),
        ("failed", report["failed"], "%(vm)s %(step)s: %(error)s"),
    ):
        if items:
            shown = [fmt % item for item in items[:5]]
            more = " and %d more" % (len(items) - 5) if len(items) > 5 else ""
            lines.append("  %s: %d: %s%s" % (label, len(items), "; ".join(shown), more))
        else:
            lines.append("  %s: none" % label)
    return lines


def step_line(data: dict[str, Any], step: str, index: int, total: int) -> str:
    """One progress line for a finished step."""
    rec = data["steps"].get(step) or {}
    seconds = rec.get("seconds")
    took = " in %.2f s" % seconds if seconds is not None else ""
    if (
        rec.get("detail") is not None
        and rec.get("done", 0) + rec.get("failed", 0) <= 1
        and step in ("mount", "unmount", "isolate", "unisolate", "tidy")
    ):
        outcome = (
            "failed: %s" % rec.get("error")
            if rec.get("state") == "failed"
            else ("done" if rec.get("done") else "skipped")
        )
        return "step %d/%d %s: %s (%s)%s" % (index, total, step, rec.get("detail") or "", outcome, took)
    return "step %d/%d %s: %d done, %d failed, %d skipped, %d retried%s" % (
        index,
        total,
        step,
        rec.get("done", 0),
        rec.get("failed", 0),
        rec.get("skipped", 0),
        rec.get("retried", 0),
        took,
    )
