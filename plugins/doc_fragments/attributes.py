# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # What each attribute means, for every module of the collection. A module adds the variants that state
    # its support levels (CHECK_MODE_FULL, DIFF_FULL, DIFF_NONE, INFO_MODULE, ACTION) and, in its own
    # ``attributes``, only the ``details`` of how it behaves. The platform comes with the connection
    # fragments (tenantry.msp.director, tenantry.msp.vsphere) or the module's ARP-lock fragment.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return the changed status it predicts without modifying the target.
  diff_mode:
    description:
      - Returns C(diff) (C(before) and C(after)) of what changed, or would change in check mode, when in diff
        mode (C(--diff) or C(diff) set to V(true)); without diff mode no C(diff) is returned.
      - Secrets (options marked C(no_log), passwords, tokens, pre-shared keys) appear only as C(********).
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
"""

    CHECK_MODE_FULL = r"""
options: {}
attributes:
  check_mode:
    support: full
"""

    DIFF_FULL = r"""
options: {}
attributes:
  diff_mode:
    support: full
"""

    # Modules that change something without a before and after of settings (a run, a restore).
    DIFF_NONE = r"""
options: {}
attributes:
  diff_mode:
    support: none
"""

    # Modules that only read.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: Reads only; runs the same in check mode.
  diff_mode:
    support: N/A
    details: Nothing changes, so there is nothing to diff.
"""

    # Modules with an action plugin of the same name.
    ACTION = r"""
options: {}
attributes:
  action:
    description: Has an action plugin of the same name, so some of its work runs on the controller.
    support: full
"""
