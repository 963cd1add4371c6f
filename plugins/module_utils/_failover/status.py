# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""A run's status from its journal, and following a running run step by step.

Reads only.  ``follow`` polls the tenant's journal folder: a journal file is parsed again only
when it changed (size, time, inode), so following a run costs a ``stat`` per poll, not a parse.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._failover import report as reporting
from ansible_collections.tenantry.msp.plugins.module_utils._failover.journal import (
    FINAL,
    Journal,
    JournalError,
    tenant_dir,
)

POLL_SECONDS = 0.1
# Once the run's last step ended, only its process's end is awaited (a moment: logouts, the report, the
# job's result): polled faster, so the follower sees the end within 10 ms rather than 50 ms on average.
CLOSING_POLL_SECONDS = 0.01

RESULT_GRACE = 10.0  # seconds to wait for the job's result once the run's process ended


class FollowError(Exception):
    """Waiting cannot go on (timed out, unknown step, unreadable journal)."""


@dataclass
class Query:
    """Which run: ``run_id``, else the run of ``attempt_id``, else the unfinished run, else the last."""

    tenant: str
    journal_dir: str = "~/.local/state/tenantry/failover/journal"
    report_dir: str = "~/.local/state/tenantry/failover/reports"
    run_id: str | None = None
    attempt_id: str | None = None


@dataclass
class JournalCache:
    """The tenant's journals, each parsed again only when its file changed."""

    entries: dict[Path, tuple[tuple[int, int, int], Journal]] = field(default_factory=dict)

    def runs(self, journal_dir: str, tenant: str) -> list[Journal]:
        folder = tenant_dir(journal_dir, tenant)
        found: list[Journal] = []
        seen = set()
        for entry in os.scandir(folder) if folder.is_dir() else []:
            if not entry.name.endswith(".json") or entry.name.startswith("."):
                continue
            path = Path(entry.path)
            seen.add(path)
            try:
                st = entry.stat()
            except OSError:
                continue
            key = (st.st_ino, st.st_size, st.st_mtime_ns)
            cached = self.entries.get(path)
            if cached is None or cached[0] != key:
                try:
                    cached = (key, Journal.load(path))
                except JournalError:
                    continue
                self.entries[path] = cached
            found.append(cached[1])
        for path in set(self.entries) - seen:
            del self.entries[path]
        return sorted(found, key=lambda j: (j.data.get("created", 0), j.run_id))

    def find(self, query: Query) -> Journal | None:
        runs = self.runs(query.journal_dir, query.tenant)
        if query.attempt_id:
            return next(
                (j for j in reversed(runs) if any(a.get("id") == query.attempt_id for a in j.data.get("attempts", []))),
                None,
            )
        if query.run_id:
            return next((j for j in runs if j.run_id == query.run_id), None)
        active = [j for j in runs if j.status not in FINAL]
        return active[-1] if active else (runs[-1] if runs else None)


def query_of(params: dict[str, Any]) -> Query:
    return Query(
        tenant=params["tenant"],
        journal_dir=params["journal_dir"],
        report_dir=params["report_dir"],
        run_id=params.get("run_id"),
        attempt_id=params.get("attempt_id"),
    )


def status(query: Query, cache: JournalCache | None = None) -> dict[str, Any] | None:
    """The run's state, each step's outcome, its progress lines and (once reported) the summary."""
    journal = (cache or JournalCache()).find(query)
    return None if journal is None else describe(journal, query)


def describe(journal: Journal, query: Query) -> dict[str, Any]:
    data = journal.data
    titles = data.get("step_titles") or {}
    order = data.get("steps_order") or list(data["steps"])
    steps = []
    for index, name in enumerate(order, 1):
        rec = data["steps"].get(name) or {}
        steps.append(
            {
                "index": index,
                "name": name,
                "title": titles.get(name, name),
                "state": rec.get("state", "pending"),
                "done": rec.get("done", 0),
                "failed": rec.get("failed", 0),
                "skipped": rec.get("skipped", 0),
                "retried": rec.get("retried", 0),
                "seconds": rec.get("seconds"),
                "detail": rec.get("detail", ""),
            }
        )
    out: dict[str, Any] = {
        "found": True,
        "run": {
            "run_id": journal.run_id,
            "mode": journal.mode,
            "flow": data.get("flow", journal.mode),
            "status": journal.status,
            "created": data.get("created"),
            "updated": data.get("updated"),
            "attempts": data.get("attempts", []),
            "journal_file": str(journal.path),
        },
        "steps": steps,
        "plan_lines": data.get("plan_lines", []),
        "progress": [e.get("text", "") for e in data.get("events", [])],
    }
    report_file = Path(query.report_dir).expanduser() / query.tenant / ("%s.json" % journal.run_id)
    if report_file.is_file():
        try:
            out["summary"] = reporting.summary_lines(json.loads(report_file.read_text()))
            out["report_file"] = str(report_file)
        except (OSError, ValueError, KeyError):
            pass
    return out


# -------------------------------------------------------------------------------- follow
def job_result(path: str | None) -> dict[str, Any] | None:
    """The asynchronous job's result once it finished (Ansible's ``results_file``), else ``None``."""
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and ("started" not in data or data.get("finished") in (1, True)):
        return data
    return None


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def _attempt(journal: Journal, attempt_id: str | None) -> dict[str, Any]:
    attempts = journal.data.get("attempts") or [{}]
    if attempt_id:
        for attempt in attempts:
            if attempt.get("id") == attempt_id:
                return dict(attempt)
    return dict(attempts[-1])


def _reached(journal: Journal, attempt: dict[str, Any], wait_for: str, ended: bool) -> bool:
    """Whether ``wait_for`` (``started``, a step, or ``result``) is reached for this attempt."""
    if wait_for == "started":
        return True
    if wait_for == "result":
        return False  # only the job's result ends that wait
    order = journal.data.get("steps_order") or []
    if wait_for not in order:
        raise FollowError("run %s has no step %s (steps: %s)" % (journal.run_id, wait_for, ", ".join(order)))
    rec = journal.data["steps"].get(wait_for) or {}
    finished = rec.get("state") in ("done", "failed") and (rec.get("ended") or 0) >= (attempt.get("started") or 0)
    return finished and (wait_for != order[-1] or ended)


def _closing(journal: Journal, attempt: dict[str, Any]) -> bool:
    """Whether this attempt's last step ended (what is left is its process's end)."""
    order = journal.data.get("steps_order") or []
    if not order:
        return False
    rec = journal.data["steps"].get(order[-1]) or {}
    return rec.get("state") in ("done", "failed") and (rec.get("ended") or 0) >= (attempt.get("started") or 0)


def follow(
    query: Query, wait_for: str | None, job_file: str | None, timeout: float, remove_job_file: bool = False
) -> dict[str, Any]:
    """Wait for ``wait_for`` of the run of ``query.attempt_id``; returns what ``failover_info`` returns.

    ``started``: the run is journaled (its preflight passed); a step name: that step ended in this
    attempt (the last step: and the run's process ended); ``result``: the asynchronous job in
    ``job_file`` ended, and its result is returned as it is (what ``async_status`` would give).
    Waiting for a step stops when the run's process ended or ``job_file`` says so.
    ``remove_job_file``: once ``result`` is read from ``job_file``, the file is removed.
    """
    if wait_for and not query.attempt_id:
        raise FollowError("wait_for needs attempt_id: the invocation whose run to follow")
    cache = JournalCache()
    deadline = time.monotonic() + timeout
    gone_since: float | None = None
    while True:
        job = job_result(job_file)
        ended = job is not None
        journal = cache.find(query)
        if not wait_for:
            break
        if journal is not None:
            attempt = _attempt(journal, query.attempt_id)
            ended = ended or attempt.get("ended") is not None or not _alive(attempt.get("pid"))
            if _reached(journal, attempt, wait_for, ended):
                break
        gone_since = (gone_since or time.monotonic()) if ended else None
        # The job's result follows its process's end by a moment; without a job file, the end is enough.
        waited_out = gone_since is not None and time.monotonic() - gone_since > RESULT_GRACE
        if job is not None or (ended and (wait_for != "result" or waited_out)):
            journal = cache.find(query)  # the run's process is gone: one last read
            break
        if time.monotonic() > deadline:
            raise FollowError("waited %d s for %s of tenant %s" % (timeout, wait_for, query.tenant))
        closing = not ended and journal is not None and _closing(journal, attempt)
        time.sleep(CLOSING_POLL_SECONDS if closing else POLL_SECONDS)
    if remove_job_file and wait_for == "result" and job is not None and job_file:
        Path(job_file).unlink(missing_ok=True)
    return _followed(query, journal, wait_for, ended, job)


def _followed(
    query: Query, journal: Journal | None, wait_for: str | None, ended: bool, job: dict[str, Any] | None
) -> dict[str, Any]:
    if wait_for == "result":
        if job is None:
            msg = "the run ended without a result"
            return {"changed": False, "found": journal is not None, "ended": ended, "msg": msg}
        # The job's own result, as async_status gives it (finished: remove_job_file removed the file).
        return dict(job, ended=True, finished=True, msg=_message(job))
    if journal is None:
        out: dict[str, Any] = {
            "changed": False,
            "found": False,
            "ended": ended,
            "skipped": bool(wait_for),
            "msg": "no run of tenant %s%s" % (query.tenant, " (it ended before starting)" if ended else ""),
        }
    else:
        out = describe(journal, query)
        out.update(changed=False, ended=ended, skipped=False)
        if wait_for and wait_for != "started":
            out.update(_step_line(journal, wait_for, ended))
    return out


def _message(job: dict[str, Any]) -> Any:
    """The job's message; a module that died of an exception leaves only its summary (ansible-core 2.19)."""
    if job.get("msg") or not job.get("failed"):
        return job.get("msg", "")
    error = job.get("exception")
    event = error.get("event") if isinstance(error, dict) else None
    text = event.get("msg") if isinstance(event, dict) else error
    return "the failover module died: %s" % (text or "no message; see the job's output")


def _step_line(journal: Journal, wait_for: str, ended: bool) -> dict[str, Any]:
    data = journal.data
    order = data.get("steps_order") or []
    rec = data["steps"].get(wait_for) or {}
    line = reporting.step_line(data, wait_for, order.index(wait_for) + 1, len(order))
    state, skipped = rec.get("state", "pending"), False
    if state == "pending" or (state == "running" and ended):
        line = "step %d/%d %s: not reached" % (order.index(wait_for) + 1, len(order), wait_for)
        skipped = True
    elif not rec.get("done") and not rec.get("failed"):
        skipped = True
    return {"line": line, "msg": line, "skipped": skipped}
