"""Console and portal accounts: users, passwords, server-side sessions, CSRF tokens, and the one
authorization function every page, form and API route asks.

Roles: ``admin``, ``operator``, ``readonly`` (MSP staff) and ``tenant`` (a user of exactly one
tenant).  :func:`authorize` is the only place that says who may do what; a tenant user's tenant is
always the one of its account, never one named by a request.

Imports only from the rooms below it (errors, limits, settings, store); the password hasher is
handed in by the Director.
"""

from __future__ import annotations

from tenantry.director.accounts.access import ACTIONS, ROLES, Principal, authorize, may
from tenantry.director.accounts.users import Accounts, LoginRefused, SessionInfo, UserRow

__all__ = ["ACTIONS", "ROLES", "Accounts", "LoginRefused", "Principal", "SessionInfo", "UserRow", "authorize", "may"]
