"""The lab's instance name and every name derived from it.

Two labs run side by side on one machine when their instance names differ (``make lab`` uses the
instance ``default``; ``make lab LAB_INSTANCE=ci`` or ``TENANTRY_LAB_INSTANCE=ci`` another).  The
default instance keeps the names the lab always had, so ``make lab`` changes nothing for its users:

=====================  ============================  ======================================
what                   default                       instance ``ci``
=====================  ============================  ======================================
state directory        ``.lab/state``                ``.lab/instances/ci/state``
network namespaces     ``tenantry-lab``,             ``tlab-ci``, ``tlab-ci-t-<target>``
                       ``tenantry-lab-t-<target>``
podman network         ``tenantry-lab``              ``tlab-ci``
containers             ``lab-director``, ...         ``tlab-ci-lab-director``, ...
container label        ``tenantry-lab=true``         ``tenantry-lab-instance=ci``
vCenter port           18443                         any free port (recorded in the state)
lock                   ``/tmp/tenantry-lab-default.lock``  ``/tmp/tenantry-lab-ci.lock``
=====================  ============================  ======================================

The bridges (``lab-mgmt``, ``lab-bridge``) and switch ports live inside the instance's switch
namespace, so their names need no prefix.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from tenantry.lab.errors import LabError

ENV = "TENANTRY_LAB_INSTANCE"
DEFAULT = "default"
DEFAULT_VCENTER_PORT = 18443
# Short: namespace names end up in interface-free places only, but "tlab-<name>-t-<target>" must stay readable.
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,15}$")


@dataclass(frozen=True)
class Instance:
    """One lab instance; ``repo`` is the repository root."""

    name: str
    repo: Path

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise LabError(
                f"lab instance name {self.name!r} (from ${ENV} or --instance): "
                "use 1-16 lower-case letters, digits or '-'"
            )

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT

    @property
    def state_dir(self) -> Path:
        return self.repo / ".lab" / ("state" if self.is_default else f"instances/{self.name}/state")

    @property
    def prefix(self) -> str:
        """Network namespaces and the podman network start with it."""
        return "tenantry-lab" if self.is_default else f"tlab-{self.name}"

    @property
    def container_prefix(self) -> str:
        return "" if self.is_default else f"{self.prefix}-"

    @property
    def vcenter_port(self) -> int:
        return DEFAULT_VCENTER_PORT if self.is_default else 0

    @property
    def lock_file(self) -> Path:
        return Path(f"/tmp/tenantry-lab-{self.name}.lock")

    def as_dict(self) -> dict[str, str | int]:
        """What ``python -m tenantry.lab instance`` prints (and the inventory derives the same way)."""
        return {
            "name": self.name,
            "state_dir": str(self.state_dir),
            "netns": self.prefix,
            "podman_network": self.prefix,
            "container_prefix": self.container_prefix,
            "vcenter_port": self.vcenter_port,
            "lock_file": str(self.lock_file),
        }


def current(repo: Path, name: str | None = None) -> Instance:
    """The instance named by ``name``, else ``$TENANTRY_LAB_INSTANCE``, else the default one."""
    return Instance(name or os.environ.get(ENV) or DEFAULT, repo)
