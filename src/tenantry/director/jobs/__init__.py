"""Jobs: the collection's playbooks run for a button, by ansible-runner (default) or AWX/AAP job
templates, behind one interface (:mod:`.backend`); :class:`JobManager` keeps one run per tenant at a
time and stores each run's events, progress, report and timeline.

Imports only from the rooms below it (config, errors, settings, store).
"""

from __future__ import annotations

from tenantry.director.jobs.backend import Backend, JobError, JobOutcome, JobSpec
from tenantry.director.jobs.manager import VM_NAME, JobManager
from tenantry.director.jobs.records import KINDS, RunRow

__all__ = ["KINDS", "VM_NAME", "Backend", "JobError", "JobManager", "JobOutcome", "JobSpec", "RunRow"]
