"""Shared fixtures: the vCenter simulator lab (see lab/README.md).

- ``vcenter``: session-wide provider vCenter (``tenantry-vcsim -mode vcenter``)
  on a random port; yields its :class:`tenantry.lab.Endpoint`.
- ``esx_factory``: ``esx_factory(name, **start_kwargs) -> Endpoint`` starts one
  standalone ESXi per call (a nested replication target); all are stopped at
  the end of the test.
- ``vsphere_si``: a pyVmomi ServiceInstance connected to ``vcenter`` with
  certificate verification on (lab CA only).
- ``vsphere_connect``: ``vsphere_connect(endpoint) -> ServiceInstance`` the
  same way for any endpoint (an ``esx_factory`` one, say); disconnected at teardown.

Every simulator of the session shares one state directory, so NAS datastores
with a relative ``localPath`` on the same export see the same files.  Tests
that use these fixtures are marked ``integration`` automatically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tenantry.lab import Endpoint, Simulator, build

_LAB_FIXTURES = {"vcenter", "esx_factory", "vsphere_si", "vsphere_connect", "lab_binary", "lab_state_dir"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _LAB_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def lab_binary() -> Path:
    """The simulator binary, built once if its sources changed."""
    return build()


@pytest.fixture(scope="session")
def lab_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One state directory (CA, logs, NFS root) for every simulator of the session."""
    return tmp_path_factory.mktemp("lab-state")


@pytest.fixture(scope="session")
def vcenter(lab_binary: Path, lab_state_dir: Path) -> Iterator[Endpoint]:
    with Simulator(lab_binary) as simulator:
        yield simulator.start("vcenter", lab_state_dir, "vcenter")


@pytest.fixture
def esx_factory(lab_binary: Path, lab_state_dir: Path) -> Iterator[Callable[..., Endpoint]]:
    simulators: list[Simulator] = []

    def start(name: str, **kwargs: Any) -> Endpoint:
        simulator = Simulator(lab_binary)
        simulators.append(simulator)
        return simulator.start("esx", lab_state_dir, f"esx-{name}", **kwargs)

    yield start
    for simulator in simulators:
        simulator.stop()


def _connect(endpoint: Endpoint) -> Any:
    """A pyVmomi ServiceInstance for ``endpoint``, verifying its certificate with the lab CA."""
    connect = pytest.importorskip("pyVim.connect")
    return connect.SmartConnect(
        host=endpoint.hostname,
        port=endpoint.port,
        user=endpoint.username,
        pwd=endpoint.password,
        sslContext=endpoint.ssl_context(),
    )


@pytest.fixture
def vsphere_connect() -> Iterator[Callable[[Endpoint], Any]]:
    connections: list[Any] = []

    def open_si(endpoint: Endpoint) -> Any:
        si = _connect(endpoint)
        connections.append(si)
        return si

    yield open_si
    disconnect = pytest.importorskip("pyVim.connect").Disconnect
    for si in connections:
        disconnect(si)


@pytest.fixture
def vsphere_si(vcenter: Endpoint, vsphere_connect: Callable[[Endpoint], Any]) -> Any:
    return vsphere_connect(vcenter)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """One real PostgreSQL server (Debian's binaries, a throw-away cluster) for the whole session."""
    from support.postgres import PostgresServer

    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.cleanup()
