# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""The run journal: one JSON file per run under ``<journal_dir>/<tenant>/<run_id>.json``.

Every save is atomic (write a temporary file, fsync, rename, fsync the directory), so a
reader (``failover_info``, a resumed run) sees the previous or the next state, never a
torn one.  One lock file per tenant (``flock``, released by the kernel when the process
dies, even on SIGKILL) keeps two runs of one tenant apart.

A run is *active* until it ends ``done`` (or ``rolled_back``); an active run is resumed
by the next run of the same mode, or undone by ``rollback``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

FORMAT = 1
FINAL = ("done", "rolled_back")


class JournalError(Exception):
    """The journal cannot be used (locked by another run, unreadable, from another version)."""


def new_run_id(mode: str, now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    return "%s-%s-%s" % (stamp, mode, secrets.token_hex(2))


def tenant_dir(journal_dir: str | Path, tenant: str) -> Path:
    return Path(journal_dir).expanduser() / tenant


@contextlib.contextmanager
def tenant_lock(journal_dir: str | Path, tenant: str) -> Iterator[None]:
    """Hold the tenant's run lock, or raise ``JournalError`` naming the process that holds it."""
    folder = tenant_dir(journal_dir, tenant)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise JournalError(
                "another failover run for tenant %s is in progress (pid %s); wait for it to end" % (tenant, holder)
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def atomic_write_json(path: Path, data: Any, indent: int | None = None) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a torn one.

    Compact by default: the journal is saved twice per step, and only ``json.dumps`` without
    indentation uses the C encoder (a 100-VM journal: 2 ms instead of 20).
    """
    separators = (",", ":") if indent is None else None
    text = json.dumps(data, indent=indent, separators=separators, sort_keys=True, default=str)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(str(path.parent), os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise JournalError("cannot read journal %s: %s" % (path, exc)) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise JournalError("%s is not a tenantry failover journal (format %s)" % (path, FORMAT))
    return data


class Journal:
    """One run's journal, held in memory and saved atomically at every recorded change."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    # ----------------------------------------------------------- find / create
    @classmethod
    def create(
        cls, journal_dir: str | Path, tenant: str, mode: str, params: dict[str, Any], run_id: str | None = None
    ) -> Journal:
        run_id = run_id or new_run_id(mode)
        now = time.time()
        data = {
            "format": FORMAT,
            "run_id": run_id,
            "tenant": tenant,
            "mode": mode,
            "status": "running",
            "created": now,
            "updated": now,
            "params": params,
            "plan": {},
            "attempts": [],
            "steps": {},
            "vms": {},
            "events": [],
        }
        journal = cls(tenant_dir(journal_dir, tenant) / ("%s.json" % run_id), data)
        return journal

    @classmethod
    def load(cls, path: Path) -> Journal:
        return cls(path, read_json(path))

    @staticmethod
    def runs(journal_dir: str | Path, tenant: str) -> list[Journal]:
        """Every journal of ``tenant``, oldest first (by creation time)."""
        folder = tenant_dir(journal_dir, tenant)
        found = []
        for path in folder.glob("*.json") if folder.is_dir() else []:
            with contextlib.suppress(JournalError):
                found.append(Journal.load(path))
        return sorted(found, key=lambda j: (j.data.get("created", 0), j.run_id))

    @classmethod
    def active(cls, journal_dir: str | Path, tenant: str) -> Journal | None:
        """The newest run of ``tenant`` that did not end ``done``/``rolled_back``, if any."""
        active = [j for j in cls.runs(journal_dir, tenant) if j.status not in FINAL]
        return active[-1] if active else None

    @classmethod
    def latest(cls, journal_dir: str | Path, tenant: str, modes: Sequence[str]) -> Journal | None:
        found = [j for j in cls.runs(journal_dir, tenant) if j.mode in modes]
        return found[-1] if found else None

    @classmethod
    def by_attempt(cls, journal_dir: str | Path, tenant: str, attempt_id: str) -> Journal | None:
        for journal in reversed(cls.runs(journal_dir, tenant)):
            if any(a.get("id") == attempt_id for a in journal.data.get("attempts", [])):
                return journal
        return None

    # ------------------------------------------------------------- properties
    @property
    def run_id(self) -> str:
        return str(self.data["run_id"])

    @property
    def mode(self) -> str:
        return str(self.data["mode"])

    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def plan(self) -> dict[str, Any]:
        plan: dict[str, Any] = self.data["plan"]
        return plan

    @property
    def vms(self) -> dict[str, dict[str, Any]]:
        vms: dict[str, dict[str, Any]] = self.data["vms"]
        return vms

    # ----------------------------------------------------------------- writes
    def save(self) -> None:
        self.data["updated"] = time.time()
        atomic_write_json(self.path, self.data)

    def begin_attempt(self, attempt_id: str | None, check_mode: bool = False) -> dict[str, Any]:
        attempt = {
            "id": attempt_id or secrets.token_hex(6),
            "pid": os.getpid(),
            "started": time.time(),
            "ended": None,
            "result": "running",
            "resumed": bool(self.data["attempts"]),
        }
        if not check_mode:
            self.data["attempts"].append(attempt)
        return attempt

    def end_attempt(self, result: str, message: str = "") -> None:
        if self.data["attempts"]:
            attempt = self.data["attempts"][-1]
            attempt.update(ended=time.time(), result=result, message=message)

    def event(self, text: str) -> None:
        self.data["events"].append({"time": time.time(), "text": text})

    def set_vm(self, name: str, **facts: Any) -> dict[str, Any]:
        record = self.vms.setdefault(name, {"name": name, "steps": {}})
        record.update(facts)
        return record

    def step(self, name: str) -> dict[str, Any]:
        record: dict[str, Any] = self.data["steps"].setdefault(
            name, {"state": "pending", "started": None, "ended": None, "detail": ""}
        )
        return record

    def vm_step(self, vm: str, step: str) -> dict[str, Any]:
        record: dict[str, Any] = self.set_vm(vm)["steps"].setdefault(
            step, {"state": "pending", "started": None, "ended": None, "attempts": 0}
        )
        return record

    def vm_step_state(self, vm: str, step: str) -> str:
        return str(self.vms.get(vm, {}).get("steps", {}).get(step, {}).get("state", "pending"))
