"""Alarms: rules over the fleet and the runs, history, delivery by e-mail (SMTP) and webhook, and the
Director's ``/metrics`` for Prometheus.

Imports only from the rooms below it (errors, settings, store); what it watches (tenants and their
state, workloads, runs) is handed in by the Director as callables.
"""

from __future__ import annotations

from tenantry.director.alarms.manager import SEVERITY, AlarmManager, TenantView
from tenantry.director.alarms.metrics import CONTENT_TYPE, Figures, Metrics
from tenantry.director.alarms.records import AlarmRecords, AlarmRow

__all__ = ["CONTENT_TYPE", "SEVERITY", "AlarmManager", "AlarmRecords", "AlarmRow", "Figures", "Metrics", "TenantView"]
