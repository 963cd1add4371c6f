# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The options of plugins/module_utils/argument_spec.py:director_argument_spec().
    DOCUMENTATION = r"""
options:
  director_url:
    description:
      - Base URL of the Director's REST API (its setup port), for example V(https://director.example:4443).
      - Falls back to the environment variable E(TENANTRY_DIRECTOR_URL).
    type: str
    required: true
    aliases: [url]
  admin_token:
    description:
      - The Director's admin token (the contents of C(admin.token) in its state directory, or
        what the C(tenantry.msp.director) role was given as C(director_admin_token)).
      - Falls back to E(TENANTRY_DIRECTOR_TOKEN). Never logged.
    type: str
    required: true
    aliases: [token]
  validate_certs:
    description:
      - Verify the Director's TLS certificate and host name. Falls back to E(TENANTRY_DIRECTOR_VALIDATE_CERTS).
      - The Director's certificate comes from its own internal CA, so give O(ca_file); turn this off only in a
        throw-away lab.
    type: bool
    default: true
  ca_file:
    description:
      - PEM file of the Director's internal CA (C(ca.crt) in its state directory).
      - Falls back to E(TENANTRY_DIRECTOR_CA_FILE). Without it the system trust store is used.
    type: path
  timeout:
    description:
      - Seconds to wait for each answer of the Director.
    type: int
    default: 30
attributes:
  platform:
    platforms: posix
    details: Talks to the Director's REST API over HTTPS with Python's standard library, from the controller or
      any host that reaches the API.
notes:
  - Give the connection options once per play with C(module_defaults) and the action group
    C(group/tenantry.msp.director).
  - The modules need nothing but Python's standard library, so they can run on the controller or on the
    Director host itself (against V(https://127.0.0.1:4443)).
"""
