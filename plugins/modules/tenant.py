#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: tenant
short_description: Create, update, revoke or remove a tenant on the Director
version_added: 0.1.0
description:
  - Declares one tenant in the Director's registry. A V(remote) tenant is a client site with its own
    Transporter, which enrolls with one-time credentials; a V(local) tenant is managed by the MSP and has none.
  - When the module creates a remote tenant it returns the enrollment credentials in RV(credentials). The
    Director returns them exactly once and keeps only a hash, so hand them to the Transporter in the same play
    (the C(tenantry.msp.transporter) role takes C(transporter_enrollment_key)).
  - Only options that are given are managed; C(name) and C(kind) cannot change after creation.
  - O(state=absent) revokes every certificate of the tenant, closes its live session at once and removes it;
    O(state=revoked) does the same but keeps the record.
author:
  - tenantry maintainers (@tenantry)
options:
  name:
    description:
      - Unique tenant name, DNS-label style (lower-case letters, digits and hyphens, at most 63 characters).
    type: str
    required: true
  kind:
    description:
      - V(remote) (own Transporter, enrolls) or V(local) (managed by the MSP). Fixed at creation; a tenant that
        exists with the other kind fails the task.
    type: str
    choices: [remote, local]
    default: remote
  description:
    description: Free text, at most 1000 characters.
    type: str
  contact:
    description: Who to call at the tenant, at most 500 characters.
    type: str
  workload_quota:
    description: Protected workloads allowed (0 means not set).
    type: int
  direct_connect:
    description:
      - Where the Director reaches the tenant's Transporter without a VPN (Direct Connect).
      - An empty dict (or no O(direct_connect.address)) removes Direct Connect.
    type: dict
    suboptions:
      address:
        description: C(host:port) of the Transporter's Direct Connect listener (its default port is 9446).
        type: str
      auth:
        description: How the Transporter proves itself.
        type: str
        choices: [certificate, psk]
        default: certificate
      psk:
        description:
          - Pre-shared key (16 to 256 characters) for O(direct_connect.auth=psk). Write-only at the Director, so
            it is sent only when none is stored yet, or on every run with O(update_psk=always).
        type: str
  update_psk:
    description:
      - V(on_create) sends O(direct_connect.psk) only when the Director holds no PSK for the tenant (the run stays
        idempotent); V(always) sends it on every run and reports a change each time.
    type: str
    choices: [always, on_create]
    default: on_create
  regenerate_credentials:
    description:
      - Issue new one-time enrollment credentials for an existing remote tenant (a site lost its key, or stayed
        offline until its certificate expired); the old unused ones stop working. Reports a change every time.
    type: bool
    default: false
  state:
    description:
      - V(present) creates or updates, V(revoked) revokes the tenant and keeps its record, V(absent) revokes and
        removes it.
    type: str
    choices: [present, absent, revoked]
    default: present
extends_documentation_fragment:
  - tenantry.msp.director
  - tenantry.msp.attributes
  - tenantry.msp.attributes.check_mode_full
  - tenantry.msp.attributes.diff_full
attributes:
  check_mode:
    details: Reports what would change and sends nothing; no credentials are issued.
  diff_mode:
    details: The tenant's declared fields before and after; PSKs appear only as C(psk_set).
notes:
  - RV(credentials) holds a secret. Register the result of this task with C(no_log) set to V(true).
"""

EXAMPLES = r"""
- name: Create the tenant and keep its one-time enrollment key for the Transporter
  tenantry.msp.tenant:
    director_url: https://director.example:4443
    admin_token: "{{ vault_director_admin_token }}"
    ca_file: /etc/tenantry/director-ca.crt
    name: acme
    description: Acme Corp, Berlin office
    contact: it@acme.example
    workload_quota: 25
  register: acme
  no_log: true

- name: Hand the key to the Transporter of the site (only on the run that created the tenant)
  ansible.builtin.set_fact:
    transporter_enrollment_key: "{{ acme.credentials.enrollment_key }}"
  delegate_to: backup01.acme.example
  delegate_facts: true
  when: acme.credentials is defined
  no_log: true

- name: Reach the site through Direct Connect with a pre-shared key
  tenantry.msp.tenant:
    name: acme
    direct_connect:
      address: gw.acme.example:9446
      auth: psk
      psk: "{{ vault_acme_psk }}"

- name: Offboard the tenant (revokes its certificates, closes its session, removes it)
  tenantry.msp.tenant:
    name: acme
    state: absent
"""

RETURN = r"""
tenant:
  description: The tenant as the Director holds it after the run, with its connection status; empty when absent.
  returned: always
  type: dict
  sample: {id: 1d3b6b1e-8a43-4f07-9b0b-6a2f6f0f2a11, name: acme, kind: remote, description: Acme Corp,
           contact: it@acme.example, workload_quota: 25, revoked_at: null,
           direct_connect: {address: "gw.acme.example:9446", auth: psk, psk_set: true},
           status: {online: false, state: awaiting_enrollment, enrolled: false}}
credentials:
  description:
    - One-time enrollment credentials, only when this run created the remote tenant or regenerated them.
      C(enrollment_key) alone is what a Transporter needs.
  returned: when issued
  type: dict
  sample: {enrollment_key: tnt1_eyJ0Ijoi..., tenant_id: 1d3b6b1e-8a43-4f07-9b0b-6a2f6f0f2a11, token: "...",
           ca_sha256: 9f86d0..., setup_url: "https://director.example:4443", expires_at: 1795910626.6}
"""

from ansible_collections.tenantry.msp.plugins.module_utils._diff import exit_result
from ansible_collections.tenantry.msp.plugins.module_utils._director_base import (
    TENANT_ARGUMENT_SPEC,
    TenantRun,
    director_module,
    run,
)


def main() -> None:
    module = director_module(argument_spec=TENANT_ARGUMENT_SPEC, supports_check_mode=True)
    exit_result(module, run(module, TenantRun(module.params, module.check_mode)))


if __name__ == "__main__":
    main()
