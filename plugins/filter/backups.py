# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""From tenant files to the backup modules' input (docs/backup.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def backup_repositories_of(specs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The backup_repository module's options for each tenant whose backups section declares something."""
    out = []
    for spec in specs:
        backups = spec.get("backups") or {}
        repo = backups.get("repository") or {}
        if not backups.get("jobs") and repo.get("location", "msp") == "msp" and not repo.get("quota_gb"):
            continue
        out.append(
            {
                "tenant": spec["name"],
                "location": repo.get("location", "msp"),
                "quota_gb": repo.get("quota_gb", 0),
                "secondary": repo.get("secondary", False),
                "check_subset": repo.get("check_subset", "5%"),
                "check_schedule": repo.get("check_schedule", "30 3 * * *"),
            }
        )
    return out


def backup_jobs_of(specs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One entry per job of every tenant: the backup_job module's options."""
    out = []
    for spec in specs:
        for job in (spec.get("backups") or {}).get("jobs") or []:
            out.append(
                {
                    "tenant": spec["name"],
                    "name": job["name"],
                    "vms": list(job["vms"]),
                    "schedule": job.get("schedule", ""),
                    "retention": dict(job.get("retention") or {}),
                    "changed_blocks": bool(job.get("changed_blocks", False)),
                    "enabled": bool(job.get("enabled", True)),
                }
            )
    return out


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"backup_repositories_of": backup_repositories_of, "backup_jobs_of": backup_jobs_of}
