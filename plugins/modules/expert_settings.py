#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: expert_settings
short_description: Declare the Director's Expert Settings
version_added: 0.1.0
description:
  - Reads the Director's Expert Settings and their registry, changes only the settings given in O(settings)
    whose value differs, in one all-or-nothing request, and reports what changed.
  - Settings not named in O(settings) are left as they are.
  - Write-only settings (passwords, tokens and keys, C(secret) in the registry) are shown by the Director only as
    set or not set, so a secret is sent when none is set and cleared with an empty string; a set one is left as it
    is (clear it first to replace it). Their values never appear in the result or the logs.
  - An unknown setting or a value of the wrong type fails before anything is sent, listing the allowed settings;
    a value out of range is refused by the Director with the allowed range, and nothing changes.
  - Most settings apply at once (a new C(uplink_port) opens the new listener, moves every connected Transporter
    to it and closes the old one). C(setup_port) applies at the next Director start; RV(restart_required)
    says so.
author:
  - tenantry maintainers (@tenantry)
options:
  settings:
    description:
      - The Expert Settings to declare, as a mapping of setting to value. Keys and allowed values are listed in
        C(docs/director-api.md) and served by the Director at C(GET /api/v1/settings).
      - Values are converted to the setting's type, so V("7702") and V(7702) are the same.
    type: dict
    required: true
extends_documentation_fragment:
  - tenantry.msp.director
  - tenantry.msp.attributes
  - tenantry.msp.attributes.check_mode_full
  - tenantry.msp.attributes.diff_full
attributes:
  check_mode:
    details: Reports what would change and sends nothing.
  diff_mode:
    details: Before and after values of the declared settings.
"""

EXAMPLES = r"""
- name: Move the tenant uplink to 7702 and allow more tasks per Transporter
  tenantry.msp.expert_settings:
    director_url: https://director.example:4443
    admin_token: "{{ vault_director_admin_token }}"
    ca_file: /etc/tenantry/director-ca.crt
    settings:
      uplink_port: 7702
      max_concurrent_tasks: 12

- name: Connection options once per play
  hosts: localhost
  module_defaults:
    group/tenantry.msp.director:
      director_url: https://director.example:4443
      admin_token: "{{ vault_director_admin_token }}"
      ca_file: files/director-ca.crt
  tasks:
    - name: Heartbeats every 10 seconds
      tenantry.msp.expert_settings:
        settings:
          heartbeat_interval: 10
"""

RETURN = r"""
values:
  description: Every Expert Setting after the run (in check mode, as it would be).
  returned: always
  type: dict
  sample: {setup_port: 4443, uplink_port: 7702, heartbeat_interval: 15.0, max_concurrent_tasks: 12}
changed_keys:
  description: The settings that changed (or would change in check mode), sorted.
  returned: always
  type: list
  elements: str
  sample: [max_concurrent_tasks, uplink_port]
restart_required:
  description:
    - Settings whose new value takes effect only when the Director restarts (C(setup_port)), including one
      changed earlier and not yet in force. Restart the C(tenantry-director) service when not empty.
  returned: always
  type: list
  elements: str
  sample: [setup_port]
"""

from ansible_collections.tenantry.msp.plugins.module_utils._diff import exit_result
from ansible_collections.tenantry.msp.plugins.module_utils._director_base import (
    SETTINGS_ARGUMENT_SPEC,
    SettingsRun,
    director_module,
    run,
)


def main() -> None:
    module = director_module(argument_spec=SETTINGS_ARGUMENT_SPEC, supports_check_mode=True)
    # Write-only settings (passwords, tokens, keys) never reach the output or the logs.
    for key, value in module.params["settings"].items():
        if key.endswith(("_password", "_secret", "_token")) and value:
            module.no_log_values.add(str(value))
    exit_result(module, run(module, SettingsRun(module.params["settings"], module.check_mode)))


if __name__ == "__main__":
    main()
