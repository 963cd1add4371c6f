# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""Failover, test failover and failback of one tenant's VMs (docs/failover.md).

- ``plan``: what to do, from what was read; input checks; no I/O.
- ``journal``: the run journal on the controller (atomic JSON, one lock per tenant).
- ``sites``: the vSphere reads and calls, scoped to the tenant's objects.
- ``executor``: reconcile, preflight, then every step for all VMs at once.
- ``report``: the RTO report (JSON) and its readable summary.
"""
