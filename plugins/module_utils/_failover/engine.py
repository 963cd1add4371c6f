# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""The step loop: plan a flow's steps on a projection, or run them for real.  It knows no flow.

A step is a row of a flow's table (``flows.py``): *when* it acts on a VM (or, for a shared step
such as mounting the NFS datastore, whether it is needed), its *effect* on the model, and its
*action* (the vSphere calls, ``actions.py``).  ``plan`` applies the effects to a projection of
the model: that is the plan, check mode and the diff.  ``Engine`` runs each step for real:

1. decide which VMs it acts on, and journal that intent (those VMs ``running``, the others
   ``skipped`` with the reason, or ``done`` when an interrupted attempt had acted on them);
2. call the action for all of them at once, through ``Context`` (bounded fan-out over
   ``run_tasks``/``run_calls``, every call timed and counted); retry the VMs that failed;
3. apply the effect to the VMs that succeeded, and journal the outcome (states, times,
   attempts, counts) and a progress line; a VM that still fails drops out of later steps.

``Hooks`` is the fault tests' seam (they SIGKILL the process at a chosen action); shipped code
never sets it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from ansible_collections.tenantry.msp.plugins.module_utils._failover import report as reporting
from ansible_collections.tenantry.msp.plugins.module_utils._failover.journal import Journal
from ansible_collections.tenantry.msp.plugins.module_utils._failover.model import VM, Run
from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere import (
    VSphereClient,
    VSphereError,
    fault_message,
    run_calls,
    vmodl,
)

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.tenantry.msp.plugins.module_utils._failover.reconcile import Sites

Outcomes = dict[str, Union[str, None]]  # per VM: None when the step succeeded, else the error


@dataclass(frozen=True)
class ReadStep:
    """The first step of every flow: done by reading, before the run is journaled."""

    title: str
    site: str = "both"
    name: str = "read"
    per_vm: bool = True


@dataclass(frozen=True)
class VMStep:
    """A step that acts on each VM: ``when`` says why not (``None``: act), ``effect`` what it changes."""

    name: str
    title: str
    site: str  # "target" or "production"
    when: Callable[[Run, VM], str | None]
    effect: Callable[[Run, VM], None]
    action: Callable[[Context, list[VM]], Outcomes]
    per_vm: bool = True


@dataclass(frozen=True)
class SharedStep:
    """A step done once for the run (mount, isolate, ...): ``when`` says whether, and what."""

    name: str
    title: str
    site: str
    when: Callable[[Run], tuple[bool, str]]
    effect: Callable[[Run], None]
    action: Callable[[Context], str | None]  # returns a note for the step's detail
    per_vm: bool = False


Step = Union[ReadStep, VMStep, SharedStep]


class Hooks:
    """Seams for the fault tests; the engine calls them and the defaults do nothing."""

    def acted(self, step: str, count: int, total: int) -> None:
        """Called once a step's intent is journaled (``count`` 0) and after each of its ``total`` actions."""


@dataclass(frozen=True)
class Settings:
    max_parallel: int = 16
    retries: int = 1
    retry_delay: float = 0.5


def errors(results: dict[str, Any]) -> Outcomes:
    """``run_tasks``/``run_calls`` give an error message (str) where a call failed."""
    return {k: v if isinstance(v, str) else None for k, v in results.items()}


# ---------------------------------------------------------------------------------- plan
def partition(run: Run, step: VMStep) -> tuple[list[str], dict[str, str]]:
    """The VMs ``step`` acts on, and those it skips with the reason."""
    act, skip = [], {}
    for name in run.order:
        vm = run.vms[name]
        reason = "failed earlier: %s" % vm.failed if vm.failed else step.when(run, vm)
        if reason is None:
            act.append(name)
        else:
            skip[name] = reason
    return act, skip


def plan(run: Run, steps: Sequence[Step]) -> tuple[list[dict[str, Any]], Run]:
    """Every step with what it acts on and skips (and why), and the model as it will be after."""
    projected = run.projection()
    entries: list[dict[str, Any]] = []
    for step in steps:
        entry: dict[str, Any] = {"step": step.name, "title": step.title, "per_vm": step.per_vm, "skip": {}}
        if isinstance(step, ReadStep):
            entry["act"] = list(run.order)
        elif isinstance(step, VMStep):
            entry["act"], entry["skip"] = partition(projected, step)
            for name in entry["act"]:
                step.effect(projected, projected.vms[name])
        else:
            needed, detail = step.when(projected)
            if needed:
                step.effect(projected)
            entry.update(act=[detail] if needed else [], detail=detail)
        entries.append(entry)
    if not any(e["act"] for e in entries[1:]):
        entries[0]["act"] = []  # "read" only counts as a change when something else does
    return entries, projected


# -------------------------------------------------------------------------------- engine
class Engine:
    """Runs a flow's steps for real on the live model, journaling each step's intent and outcome."""

    def __init__(
        self, run: Run, sites: Sites, journal: Journal, settings: Settings, hooks: Hooks | None = None
    ) -> None:
        self.run = run
        self.sites = sites
        self.journal = journal
        self.settings = settings
        self.hooks = hooks or Hooks()
        self.changed = False
        self.events: list[str] = []
        self._times: dict[str, list[float]] = {}  # "<step>/<vm>": [first call, last end]
        self._offsets: dict[int, float] = {}  # per client: vCenter's clock minus ours
        self._acted = 0
        self._lock = threading.Lock()
        self._unsaved = False  # a step's outcome not on disk yet (the next step's intent saves it)

    def execute(self, steps: Sequence[Step]) -> None:
        try:
            for index, step in enumerate(steps, 1):
                if not isinstance(step, ReadStep):
                    self._run_step(step, index, len(steps))
        finally:
            if self._unsaved:
                self.save()

    def save(self) -> None:
        self._unsaved = False
        self.journal.save()

    def _run_step(self, step: VMStep | SharedStep, index: int, total: int) -> None:
        record = self.journal.step(step.name)
        started = time.time()
        if isinstance(step, VMStep):
            act, skip = partition(self.run, step)
        else:
            needed, record["detail"] = step.when(self.run)
            act, skip = (["*"] if needed else []), {}
        self._intent(step, record, act, skip, started)
        outcomes, attempts = self._attempts(step, record, act)
        ended = time.time()
        failed = {n: str(outcomes[n]) for n in act if outcomes.get(n)}
        if isinstance(step, VMStep):
            self._vm_outcomes(step, act, failed, attempts, (started, ended))
        elif failed:
            record["error"] = failed.get("*")
        self._outcome(step, record, act, failed, attempts, (started, ended))
        line = reporting.step_line(self.journal.data, step.name, index, total)
        self.journal.event(line)
        self.events.append(line)
        # Saved with the next step's intent, a moment later (one write instead of two back to back: a
        # save fsyncs the file and its folder); execute() saves the last outcome.
        self._unsaved = True
        if not step.per_vm and failed:
            raise VSphereError("step %s failed: %s" % (step.name, failed.get("*")))

    def _intent(self, step: Step, record: dict[str, Any], act: list[str], skip: dict[str, str], now: float) -> None:
        """Journal what the step is about to do, before it does anything."""
        journal = self.journal
        record.update(state="running", started=record.get("started") or now, ended=None)
        for name, reason in skip.items():
            vs = journal.vm_step(name, step.name)
            if vs["state"] == "running" and not self.run.vms[name].failed:
                # Acted on before an interruption and found done now: when exactly is unknown, so the
                # time it was found is recorded (an upper bound, marked reconciled).
                vs.update(state="done", reconciled=True, reason="done before the interruption", ended=now)
            elif vs["state"] != "done":
                vs.update(state="skipped", reason=reason, started=now, ended=now)
        for name in act:
            if name != "*":
                journal.vm_step(name, step.name).update(state="running", started=now, ended=None)
        self.save()
        self._acted = 0
        self.hooks.acted(step.name, 0, len(act))

    def _attempts(
        self, step: VMStep | SharedStep, record: dict[str, Any], act: list[str]
    ) -> tuple[Outcomes, dict[str, int]]:
        """Act, then try the failed ones again (``retries`` times, ``retry_delay`` apart)."""
        outcomes: Outcomes = {}
        attempts: dict[str, int] = {}
        todo = list(act)
        for attempt in range(1 + max(0, self.settings.retries)):
            if not todo:
                break
            if attempt:
                time.sleep(self.settings.retry_delay)
            for name in todo:
                attempts[name] = attempts.get(name, 0) + 1
            if isinstance(step, VMStep):
                results = self._act(step, todo, len(act))
            else:
                results, note = self._act_shared(step)
                if note:
                    record["detail"] = "%s; %s" % (record.get("detail", ""), note)
                self.hooks.acted(step.name, 1, 1)
            outcomes.update(results)
            todo = [n for n in todo if outcomes.get(n)]
        return outcomes, attempts

    def _act(self, step: VMStep, names: list[str], total: int) -> Outcomes:
        for name in names:
            self._times.pop("%s/%s" % (step.name, name), None)
        results = step.action(Context(self, step.name, total), [self.run.vms[n] for n in names])
        for name in names:
            if not results.get(name):
                step.effect(self.run, self.run.vms[name])
        return results

    def _act_shared(self, step: SharedStep) -> tuple[Outcomes, str | None]:
        try:
            note = step.action(Context(self, step.name, 1))
        except (VSphereError, vmodl.MethodFault) as exc:
            return {"*": fault_message(exc)}, None
        step.effect(self.run)
        return {"*": None}, note

    def _vm_outcomes(
        self, step: VMStep, act: list[str], failed: dict[str, str], attempts: dict[str, int], span: tuple[float, float]
    ) -> None:
        """Each VM's outcome: its times (first call to last end), attempts, error; what was learnt of it."""
        for name in act:
            times = self._times.get("%s/%s" % (step.name, name), list(span))
            vs = self.journal.vm_step(name, step.name)
            vs.update(
                state="failed" if name in failed else "done",
                started=times[0],
                ended=times[1] or span[1],
                attempts=vs.get("attempts", 0) + attempts.get(name, 1),
                error=failed.get(name),
            )
            vm = self.run.vms[name]
            if name in failed:
                vm.failed = "%s: %s" % (step.name, failed[name])
            else:
                self.journal.set_vm(name, **vm.record())

    def _outcome(
        self,
        step: VMStep | SharedStep,
        record: dict[str, Any],
        act: list[str],
        failed: dict[str, str],
        attempts: dict[str, int],
        span: tuple[float, float],
    ) -> None:
        """The step's record: counts over every attempt of the run, seconds it was actually running."""
        journal, order = self.journal, self.run.order
        active = float(record.get("active_seconds") or 0.0) + (span[1] - span[0])
        if step.per_vm:
            states = [journal.vm_step_state(n, step.name) for n in order]
            counts = {
                "done": states.count("done"),
                "failed": states.count("failed"),
                "skipped": states.count("skipped"),
                "retried": sum(1 for n in order if journal.vm_step(n, step.name).get("attempts", 0) > 1),
            }
        else:
            counts = {
                "done": 1 if (act and not failed) or record.get("done") else 0,
                "failed": len(failed),
                "skipped": 0,
                "retried": 1 if attempts.get("*", 1) > 1 else 0,
            }
        record.update(
            state="failed" if failed else "done",
            ended=span[1],
            active_seconds=active,
            seconds=round(active, 3),
            **counts,
        )
        if any(n not in failed for n in act):
            self.changed = True

    # ------------------------------------------------------------------ timing
    def timed(self, step: str, key: str, start: Callable[[], Any], total: int) -> Callable[[], Any]:
        """``start`` that records when it was called and returned (a VM's several calls: first to last).

        ``key`` is the VM's name, or ``<vm>|<what>`` for one of several calls for a VM.
        """
        times_key = "%s/%s" % (step, key.split("|")[0])

        def go() -> Any:
            began = time.time()
            result = start()
            with self._lock:
                times = self._times.setdefault(times_key, [began, 0.0])
                times[0] = min(times[0], began)
                times[1] = max(times[1], time.time())
                self._acted += 1
                count = self._acted
            self.hooks.acted(step, count, total)
            return result

        return go

    def task_end_times(self, client: VSphereClient, step: str, ended: dict[str, Any]) -> None:
        """Each VM's last task end, from vCenter's ``completeTime`` (its clock, corrected by the offset)."""
        if not ended:
            return
        now = time.time()
        try:
            offset = self._offset(client)
        except Exception:  # timing detail only: keep the local clock's times
            return
        ends: dict[str, float] = {}
        for key, done in ended.items():
            times_key = "%s/%s" % (step, key.split("|")[0])
            ends[times_key] = max(ends.get(times_key, 0.0), done.timestamp() - offset)
        for key, end in ends.items():
            if key in self._times:
                self._times[key][1] = min(max(end, self._times[key][0]), now)

    def _offset(self, client: VSphereClient) -> float:
        key = id(client)
        if key not in self._offsets:
            before = time.time()
            server = client.si.CurrentTime().timestamp()
            self._offsets[key] = server - (before + time.time()) / 2
        return self._offsets[key]


class Context:
    """What an action may use: the model, the sites, and the engine's fan-out and journal."""

    def __init__(self, engine: Engine, step: str, total: int) -> None:
        self._engine = engine
        self.step = step
        self.total = total
        self.run = engine.run
        self.sites = engine.sites

    def tasks(
        self,
        client: VSphereClient,
        starters: Iterable[tuple[str, Callable[[], Any]]],
        timed: bool = True,
        questions: dict[str, tuple[Any, Callable[[Any], str | None]]] | None = None,
    ) -> dict[str, Any]:
        """Start vSphere tasks (bounded fan-out, one wait); ``{key: result or error message}``.

        ``timed`` calls are timed per VM and counted as the step's actions (the hooks see them);
        ``questions``: a VM's question answered while its task waits (``VSphereClient.run_tasks``).
        """
        engine = self._engine
        items = list(starters)
        if timed:
            items = [(k, engine.timed(self.step, k, s, self.total)) for k, s in items]
        ended: dict[str, Any] = {}
        results = client.run_tasks(
            items, engine.settings.max_parallel, raise_on_error=False, ended=ended, questions=questions
        )
        if timed:
            engine.task_end_times(client, self.step, ended)
        return results

    def calls(
        self, client: VSphereClient | None, calls: Iterable[tuple[str, Callable[[], Any]]], timed: bool = True
    ) -> dict[str, Any]:
        """Synchronous vSphere calls (no task), bounded fan-out; ``{key: result or error}``.

        ``client``: the endpoint they go to, whose shared slots they hold (``None``: several endpoints).
        """
        engine = self._engine
        items = list(calls)
        if timed:
            items = [(k, engine.timed(self.step, k, c, self.total)) for k, c in items]
        slots = client.slots if client is not None else None
        if client is not None:
            client.keep_connections(engine.settings.max_parallel + 2)
        return run_calls(items, engine.settings.max_parallel, raise_on_error=False, slots=slots)

    def remember(self, vms: Iterable[VM]) -> None:
        """Journal what is known of ``vms`` now, before a call that depends on it."""
        for vm in vms:
            self._engine.journal.set_vm(vm.name, **vm.record())
        self._engine.save()

    def event(self, text: str) -> None:
        self._engine.journal.event(text)
        self._engine.save()
