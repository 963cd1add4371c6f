"""Fixtures for backups: a client-site vCenter with VMs full of bytes, and a Director + Transporter pair."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from backuplab import BackupLab, start_lab

from tenantry.lab import Simulator
from tenantry.lab.simulator import Endpoint

VMS = ["acme-dc01", "acme-app01"]


@pytest.fixture
def client_site(lab_binary: Path, tmp_path: Path) -> Iterator[Endpoint]:
    """The tenant's own vCenter (client mode): datacenter ``site``, datastore ``site-ds-01``, two VMs of 64 MiB."""
    with Simulator(lab_binary) as sim:
        yield sim.start("client", tmp_path / "site-lab", "client", hosts=1, client_vms=VMS, disk_mib=64)


@pytest.fixture
def backup_lab(tmp_path: Path, client_site: Endpoint) -> Iterator[BackupLab]:
    lab = start_lab(tmp_path, client_site)
    try:
        yield lab
    finally:
        lab.transporter.stop()
        lab.director.stop()


@pytest.fixture
def make_lab(tmp_path: Path, client_site: Endpoint) -> Iterator[Callable[..., BackupLab]]:
    labs: list[BackupLab] = []

    def make(**kwargs: object) -> BackupLab:
        lab = start_lab(tmp_path, client_site, **kwargs)  # type: ignore[arg-type]
        labs.append(lab)
        return lab

    try:
        yield make
    finally:
        for lab in labs:
            lab.transporter.stop()
            lab.director.stop()
