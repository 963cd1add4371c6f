# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""Failover, test failover and failback of one tenant's VMs (docs/failover.md, "How a run works").

The surface is ``api``: ``plan``, ``run``, ``status`` and ``follow``.  Inside, by what changes:

- ``flows``: one table per flow, step by step: when it acts, its effect on the model, its action.
- ``actions``: the vSphere calls of every step, one named function each.
- ``nics``: a VM's NICs across a move (one unit: what is recorded, what changes, device specs).
- ``engine``: the step loop (plan on a projection; run: fan-out, retries, journal, timing, hooks).
- ``model``: the run's state as plain data (VMs, choices, the production side).
- ``runs``: which run a request resumes or undoes; the journal's first and last lines.
- ``reconcile``: read both sides, reconcile them with the journal, refresh after acting.
- ``preflight``: the checks and choices before any change.
- ``plan``: the rules without I/O (tenant fields, VLAN, VM selection, host, datastores, waves).
- ``sites``: the vSphere reads and calls, scoped to the tenant's objects.
- ``journal``, ``report``, ``status``: the run journal and lock; the RTO report; a run's status.
"""
