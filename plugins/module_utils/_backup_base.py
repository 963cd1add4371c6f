# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""The backup modules' logic over the Director API (docs/backup.md).

``backup_repository`` and ``backup_job`` are declarative (read → desired → compare → apply
unless check mode, ``diff`` of the declared fields).  ``backup_now`` and ``backup_restore`` start
a run and follow it until it ends; they always report a change (a backup or a restore was made).
"""

from __future__ import annotations

import time
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._diff import exit_result
from ansible_collections.tenantry.msp.plugins.module_utils.clients.director_api import DirectorApiError, DirectorClient

GIB = 1 << 30
RETENTION_KEYS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")

# ---------------------------------------------------------------------- backup_repository
REPOSITORY_ARGUMENT_SPEC: dict[str, Any] = {
    "tenant": {"type": "str", "required": True},
    "location": {"type": "str", "choices": ["msp", "site"]},
    "quota_gb": {"type": "float"},
    "secondary": {"type": "bool"},
    "check_subset": {"type": "str"},
    "check_schedule": {"type": "str"},
}

_REPOSITORY_DEFAULTS: dict[str, Any] = {
    "location": "msp",
    "quota_bytes": None,
    "secondary": False,
    "check_subset": "5%",
    "check_schedule": "30 3 * * *",
}


def repository_view(current: dict[str, Any] | None) -> dict[str, Any]:
    if current is None:
        return {}
    return {k: current.get(k) for k in _REPOSITORY_DEFAULTS}


def repository_desired(current: dict[str, Any] | None, params: dict[str, Any]) -> dict[str, Any]:
    """The settings after this run: what the task gives, the rest as they are (or the defaults)."""
    desired = dict(repository_view(current) or _REPOSITORY_DEFAULTS)
    for key in ("location", "secondary", "check_subset"):
        if params.get(key) is not None:
            desired[key] = params[key]
    if params.get("quota_gb") is not None:
        desired["quota_bytes"] = int(params["quota_gb"] * GIB) if params["quota_gb"] > 0 else None
    if params.get("check_schedule") is not None:
        desired["check_schedule"] = " ".join(params["check_schedule"].split()) or None
    return desired


class RepositoryRun:
    def __init__(self, params: dict[str, Any], check_mode: bool) -> None:
        self.params = params
        self.check_mode = check_mode

    def __call__(self, client: DirectorClient) -> dict[str, Any]:
        tenant = self.params["tenant"]
        current = client.backup_repository(tenant)
        before = repository_view(current)
        desired = repository_desired(current, self.params)
        changed = before != desired
        repository = current or {}
        if changed and not self.check_mode:
            repository = client.put_backup_repository(tenant, desired)
        return {"changed": changed, "repository": repository, "diff": {"before": before, "after": desired}}


# ---------------------------------------------------------------------- backup_job
JOB_ARGUMENT_SPEC: dict[str, Any] = {
    "tenant": {"type": "str", "required": True},
    "name": {"type": "str", "required": True},
    "vms": {"type": "list", "elements": "str"},
    "schedule": {"type": "str", "default": ""},
    "retention": {
        "type": "dict",
        "default": {},
        "options": {key: {"type": "int", "default": 0} for key in RETENTION_KEYS},
    },
    "changed_blocks": {"type": "bool", "default": False},
    "enabled": {"type": "bool", "default": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
}

_JOB_KEYS = ("vms", "schedule", "retention", "changed_blocks", "enabled")


def job_view(job: dict[str, Any] | None) -> dict[str, Any]:
    if job is None:
        return {}
    view = {k: job.get(k) for k in _JOB_KEYS}
    view["retention"] = {k: int((job.get("retention") or {}).get(k, 0)) for k in RETENTION_KEYS}
    return view


def job_desired(params: dict[str, Any]) -> dict[str, Any]:
    if not params.get("vms"):
        raise DirectorApiError("vms: a backup job needs at least one VM")
    schedule = " ".join((params.get("schedule") or "").split()) or None
    retention = params.get("retention") or {}
    return {
        "vms": list(params["vms"]),
        "schedule": schedule,
        "retention": {k: int(retention.get(k) or 0) for k in RETENTION_KEYS},
        "changed_blocks": bool(params["changed_blocks"]),
        "enabled": bool(params["enabled"]),
    }


class JobRun:
    def __init__(self, params: dict[str, Any], check_mode: bool) -> None:
        self.params = params
        self.check_mode = check_mode

    def __call__(self, client: DirectorClient) -> dict[str, Any]:
        tenant, name = self.params["tenant"], self.params["name"]
        current = next((j for j in client.backup_jobs(tenant) if j["name"] == name), None)
        before = job_view(current)
        if self.params["state"] == "absent":
            changed = current is not None
            if changed and not self.check_mode:
                client.delete_backup_job(tenant, name)
            return {"changed": changed, "job": {}, "diff": {"before": before, "after": {}}}
        desired = job_desired(self.params)
        changed = before != desired
        job = current or {}
        if changed and not self.check_mode:
            job = client.put_backup_job(tenant, name, desired)
        return {"changed": changed, "job": job, "diff": {"before": before, "after": desired}}


# ---------------------------------------------------------------------- runs
def wait_run(client: DirectorClient, run: dict[str, Any], timeout: int, poll: float = 2.0) -> dict[str, Any]:
    """Follow a run until it ends; an error past ``timeout`` seconds (the run goes on at the Director)."""
    deadline = time.monotonic() + timeout
    while run.get("state") == "running":
        if time.monotonic() > deadline:
            raise DirectorApiError(
                "run %s is still running after %d s; follow it with tenantry.msp.backup_info run_id=%s"
                % (run["id"], timeout, run["id"])
            )
        time.sleep(poll)
        run = client.backup_run(int(run["id"]))
    return run


BACKUP_NOW_ARGUMENT_SPEC: dict[str, Any] = {
    "tenant": {"type": "str", "required": True},
    "job": {"type": "str", "required": True},
    "vms": {"type": "list", "elements": "str"},
    "wait": {"type": "bool", "default": True},
    "timeout": {"type": "int", "default": 14400},
}


def summarize(run: dict[str, Any]) -> dict[str, Any]:
    """Per VM of a backup run: snapshot, size read, bytes added and sent, seconds (for reports)."""
    out: dict[str, Any] = {}
    for vm, result in ((run.get("detail") or {}).get("vms") or {}).items():
        if vm.startswith("_") or not isinstance(result, dict):
            continue
        out[vm] = {
            k: result.get(k)
            for k in ("ok", "error", "snapshot_id", "mode", "total_bytes", "data_added", "uplink_bytes", "seconds")
            if k in result
        }
    return out


class BackupNowRun:
    def __init__(self, params: dict[str, Any], check_mode: bool) -> None:
        self.params = params
        self.check_mode = check_mode

    def __call__(self, client: DirectorClient) -> dict[str, Any]:
        p = self.params
        if self.check_mode:
            jobs = {j["name"]: j for j in client.backup_jobs(p["tenant"])}
            if p["job"] not in jobs:
                raise DirectorApiError("tenant %r has no backup job %r" % (p["tenant"], p["job"]))
            return {"changed": True, "run": {}, "vms": {}}
        run = client.run_backup_job(p["tenant"], p["job"], p.get("vms") or None)
        if p["wait"]:
            run = wait_run(client, run, p["timeout"])
        return {"changed": True, "run": run, "vms": summarize(run)}


# ---------------------------------------------------------------------- backup_restore
RESTORE_ARGUMENT_SPEC: dict[str, Any] = {
    "tenant": {"type": "str", "required": True},
    "vm": {"type": "str", "required": True},
    "snapshot": {"type": "str", "default": "latest"},
    "destination": {"type": "str", "choices": ["site", "production"], "default": "site"},
    "name": {"type": "str"},
    "replace": {"type": "bool", "default": False},
    "datastore": {"type": "str"},
    "folder": {"type": "str"},
    "resource_pool": {"type": "str"},
    "host": {"type": "str"},
    "power_on": {"type": "bool", "default": False},
    "network_map": {"type": "dict", "default": {}},
    "vcenter": {
        "type": "dict",
        "options": {
            "hostname": {"type": "str", "required": True},
            "port": {"type": "int", "default": 443},
            "username": {"type": "str", "required": True},
            "password": {"type": "str", "required": True, "no_log": True},
            "ca_file": {"type": "str"},
            "validate_certs": {"type": "bool", "default": True},
            "datacenter": {"type": "str"},
        },
    },
    "wait": {"type": "bool", "default": True},
    "timeout": {"type": "int", "default": 14400},
}


def exit_run(module: Any, result: dict[str, Any], what: str) -> None:
    """End the module with a run's result: failed when the run failed or was cancelled."""
    run = result["run"]
    if run.get("state") in ("failed", "cancelled"):
        module.fail_json(msg="%s %s %s: %s" % (what, run["id"], run["state"], run.get("message")), **result)
    exit_result(module, result)


def restore_spec(params: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        k: params[k]
        for k in ("vm", "snapshot", "destination", "replace", "power_on", "network_map")
        if params.get(k) is not None
    }
    for key in ("name", "datastore", "folder", "resource_pool", "host"):
        if params.get(key):
            spec[key] = params[key]
    if params["destination"] == "production":
        vc = params.get("vcenter")
        if not vc:
            raise DirectorApiError("destination=production needs vcenter (the production vCenter to restore into)")
        spec["vcenter"] = {
            "hostname": vc["hostname"],
            "port": vc["port"],
            "username": vc["username"],
            "password": vc["password"],
            "insecure": not vc["validate_certs"],
        }
        for key in ("ca_file", "datacenter"):
            if vc.get(key):
                spec["vcenter"][key] = vc[key]
    return spec


class RestoreRun:
    def __init__(self, params: dict[str, Any], check_mode: bool) -> None:
        self.params = params
        self.check_mode = check_mode

    def __call__(self, client: DirectorClient) -> dict[str, Any]:
        p = self.params
        spec = restore_spec(p)
        if self.check_mode:
            found = client.backups(p["tenant"], p["vm"])
            if not found:
                raise DirectorApiError("tenant %r has no backup of %r" % (p["tenant"], p["vm"]))
            return {"changed": True, "run": {}}
        run = client.restore(p["tenant"], spec)
        if p["wait"]:
            run = wait_run(client, run, p["timeout"])
        return {"changed": True, "run": run}


# ---------------------------------------------------------------------- backup_info
INFO_ARGUMENT_SPEC: dict[str, Any] = {
    "tenant": {"type": "str"},
    "vm": {"type": "str"},
    "run_id": {"type": "int"},
    "runs": {"type": "int", "default": 10},
}


def backup_info(client: DirectorClient, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("run_id") is not None:
        return {"changed": False, "run": client.backup_run(params["run_id"])}
    if not params.get("tenant"):
        return {"changed": False, "overview": client.request("GET", "/api/v1/backups/overview")}
    tenant = params["tenant"]
    return {
        "changed": False,
        "repository": client.backup_repository(tenant),
        "jobs": client.backup_jobs(tenant),
        "backups": client.backups(tenant, params.get("vm")),
        "runs": client.backup_runs(tenant, params["runs"]),
    }
