"""Run ``tenantry.msp.failover`` as Ansible runs it, with a kill point injected (the fault tests' hook).

    python kill_at.py ARGS_FILE STEP[:0|:N|:half|:all]

The module runs through its ``run_module(hooks=...)``; ``KillAt`` SIGKILLs this process after the
N-th action of STEP (``0``: once the step's intent is journaled, before any action; ``half``: half
its VMs acted on, the default; ``all``: every action done, none journaled).  Shipped code never
sets a hook: the kill point exists only in this test driver.
"""

from __future__ import annotations

import math
import os
import signal
import sys

from ansible_collections.tenantry.msp.plugins.module_utils._failover.engine import Hooks
from ansible_collections.tenantry.msp.plugins.modules import failover


class KillAt(Hooks):
    def __init__(self, point: str) -> None:
        self.step, _sep, self.when = point.partition(":")

    def acted(self, step: str, count: int, total: int) -> None:
        if step != self.step:
            return
        if self.when in ("", "half"):
            at = max(1, math.ceil(total / 2))
        elif self.when == "all":
            at = total
        else:
            at = int(self.when)
        if count == at:
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    args_file, point = sys.argv[1], sys.argv[2]
    sys.argv = [failover.__file__, args_file]  # AnsibleModule reads its arguments from this file
    failover.run_module(hooks=KillAt(point))
