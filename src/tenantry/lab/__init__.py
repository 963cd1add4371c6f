"""The vCenter simulator lab: build, start and stop govmomi simulators for tests and bring-up.

``build()`` compiles ``lab/vcsim`` into ``.lab/bin/tenantry-vcsim``;
``Simulator().start(mode, state_dir, name)`` runs one instance and returns its
:class:`Endpoint`; ``python -m tenantry.lab`` is the command line (see lab/README.md).
"""

from __future__ import annotations

from tenantry.lab.build import binary_path, build, repo_root
from tenantry.lab.errors import LabError
from tenantry.lab.simulator import DEFAULT_USERNAME, Endpoint, Mode, Simulator, add_directory_user, terminate
from tenantry.lab.tls import LabTLS, ensure_tls

__all__ = [
    "DEFAULT_USERNAME",
    "Endpoint",
    "LabError",
    "LabTLS",
    "Mode",
    "Simulator",
    "add_directory_user",
    "binary_path",
    "build",
    "ensure_tls",
    "repo_root",
    "terminate",
]
