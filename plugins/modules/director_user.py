#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: director_user
short_description: Create, change or remove a user of the Director's console or tenant portal
version_added: 0.2.0
description:
  - Declares one user of the Director's web console (MSP roles V(admin), V(operator), V(readonly)) or of its
    tenant portal (role V(tenant), a user of exactly one tenant). See C(docs/console.md) for what each role may do.
  - Passwords are stored by the Director as Argon2id hashes and never returned, so a password is sent when the user
    is created, and on later runs only with O(update_password=always) (which then reports a change every run).
  - Changing a user's password, role or tenant, or disabling it, ends all its open sessions.
author:
  - tenantry maintainers (@tenantry)
options:
  username:
    description:
      - Login name; lower-case letters, digits and C(. _ @ -), at most 64 characters (upper case is folded).
    type: str
    required: true
    aliases: [name]
  role:
    description:
      - V(admin), V(operator) and V(readonly) are MSP staff; V(tenant) is a user of the tenant O(tenant).
      - Required to create a user.
    type: str
    choices: [admin, operator, readonly, tenant]
  tenant:
    description: The tenant a V(tenant) user belongs to (its name); only for that role.
    type: str
  password:
    description:
      - At least 12 characters. Required to create a user. Never logged.
    type: str
  update_password:
    description:
      - V(on_create) sends O(password) only when the user is created (runs stay idempotent); V(always) sends it on
        every run and reports a change each time.
    type: str
    choices: [always, on_create]
    default: on_create
  full_name:
    description: Shown in the console.
    type: str
  email:
    description: Shown in the console.
    type: str
  disabled:
    description: A disabled user cannot log in; its sessions end.
    type: bool
  state:
    description: V(present) creates or changes the user, V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - tenantry.msp.director
  - tenantry.msp.attributes
  - tenantry.msp.attributes.check_mode_full
  - tenantry.msp.attributes.diff_full
attributes:
  check_mode:
    details: Reads the user and reports what would change.
  diff_mode:
    details: The user's fields before and after; a password only as C(********).
"""

EXAMPLES = r"""
- name: An operator of the MSP
  tenantry.msp.director_user:
    username: noc-alice
    role: operator
    password: "{{ vault_noc_alice_password }}"
    email: alice@msp.example

- name: A portal user of tenant acme
  tenantry.msp.director_user:
    username: acme-it
    role: tenant
    tenant: acme
    password: "{{ vault_acme_portal_password }}"

- name: Remove a user
  tenantry.msp.director_user:
    username: former-employee
    state: absent
"""

RETURN = r"""
user:
  description: The user as the Director holds it (never its password).
  returned: always
  type: dict
  sample: {username: acme-it, role: tenant, tenant: acme, full_name: "", email: "", disabled: false,
           locked: false, source: api, last_login: null, password_changed_at: 1796300000.0,
           created_at: 1796300000.0, updated_at: 1796300000.0}
"""

from ansible_collections.tenantry.msp.plugins.module_utils._diff import exit_result
from ansible_collections.tenantry.msp.plugins.module_utils._director_base import (
    USER_ARGUMENT_SPEC,
    UserRun,
    director_module,
    run,
)


def main() -> None:
    module = director_module(
        argument_spec=USER_ARGUMENT_SPEC,
        supports_check_mode=True,
        required_if=[("role", "tenant", ("tenant",))],
    )
    exit_result(module, run(module, UserRun(module.params, module.check_mode)))


if __name__ == "__main__":
    main()
