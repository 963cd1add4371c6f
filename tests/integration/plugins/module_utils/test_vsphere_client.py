"""The pyVmomi client layer against the real simulator: bulk reads, typed errors, concurrent tasks."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pyVmomi import vim

from ansible_collections.tenantry.msp.plugins.module_utils._slots import Slots
from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere import (
    AuthenticationFailed,
    ConnectionFailed,
    ConnectionParams,
    NotFound,
    TaskFailed,
    VSphereClient,
    run_calls,
)

pytestmark = pytest.mark.integration


def params(vcenter: Any, **over: Any) -> ConnectionParams:
    base = {
        "hostname": vcenter.hostname,
        "port": vcenter.port,
        "username": vcenter.username,
        "password": vcenter.password,
        "ca_file": str(vcenter.ca_file),
    }
    base.update(over)
    return ConnectionParams(**base)


@pytest.fixture
def client(vcenter: Any) -> Iterator[VSphereClient]:
    with VSphereClient(params(vcenter)) as c:
        yield c


def test_password_is_not_in_repr(vcenter: Any) -> None:
    assert vcenter.password not in repr(params(vcenter))


def test_typed_errors(vcenter: Any, tmp_path: Any) -> None:
    with pytest.raises(AuthenticationFailed, match="refused the login"):
        VSphereClient(params(vcenter, password="nope"))
    with pytest.raises(ConnectionFailed, match="cannot load ca_file"):
        VSphereClient(params(vcenter, ca_file=str(tmp_path / "missing.pem")))
    with pytest.raises(ConnectionFailed, match="could not be verified"):
        VSphereClient(params(vcenter, ca_file=None))


def test_retrieve_and_get(client: VSphereClient) -> None:
    hosts = client.retrieve(vim.HostSystem, ["name", "runtime.connectionState"])
    assert sorted(h["name"] for h in hosts) == [f"esx-prod-0{i}.lab.local" for i in (1, 2, 3)]
    assert all(h["runtime.connectionState"] == "connected" for h in hosts)
    ds = client.get(vim.Datastore, "prod-ds-01")
    assert ds.name == "prod-ds-01"
    assert client.get(vim.Datastore, ds._moId) == ds
    with pytest.raises(NotFound, match=r"'nope' not found; existing: .*prod-ds-01"):
        client.get(vim.Datastore, "nope")


class Gauge:
    """Counts start calls in flight, to observe the fan-out bound from the outside."""

    def __init__(self) -> None:
        self.now = self.peak = 0
        self.lock = threading.Lock()

    def wrap(self, call: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with self.lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
            try:
                return call()
            finally:
                with self.lock:
                    self.now -= 1

        return run


def test_run_tasks_concurrent_bounded_and_reports_failures(client: VSphereClient) -> None:
    folder = client.get(vim.Folder, "replication-targets")
    pool = client.get(vim.ResourcePool, "replication-targets")
    names = [f"fanout-{i:02d}" for i in range(8)]
    gauge = Gauge()

    def creator(name: str) -> Callable[[], Any]:
        spec = vim.vm.ConfigSpec(name=name, guestId="otherGuest64", files=vim.vm.FileInfo(vmPathName="[prod-ds-01]"))
        return gauge.wrap(lambda: folder.CreateVM_Task(config=spec, pool=pool))

    created = client.run_tasks(((n, creator(n)) for n in names), max_parallel=3)
    assert sorted(created) == names
    assert 1 <= gauge.peak <= 3
    vms = {n: vm for n, vm in created.items()}
    assert all(isinstance(vm, vim.VirtualMachine) for vm in vms.values())
    try:
        client.run_tasks(((n, vms[n].PowerOnVM_Task) for n in names), max_parallel=4)
        states = {
            r["name"]: r["runtime.powerState"]
            for r in client.retrieve(vim.VirtualMachine, ["name", "runtime.powerState"])
        }
        assert all(states[n] == "poweredOn" for n in names)
        # Powering on again fails for one VM; the others' tasks still run to the end and are reported.
        client.run_tasks([(names[1], vms[names[1]].PowerOffVM_Task)])
        with pytest.raises(TaskFailed) as err:
            client.run_tasks(((n, vms[n].PowerOffVM_Task) for n in names), max_parallel=4)
        assert set(err.value.failures) == {names[1]}
        states = {
            r["name"]: r["runtime.powerState"]
            for r in client.retrieve(vim.VirtualMachine, ["name", "runtime.powerState"])
        }
        assert all(states[n] == "poweredOff" for n in names)
    finally:
        client.run_tasks(((n, vm.Destroy_Task) for n, vm in vms.items()), raise_on_error=False)
    assert not any(r["name"] in names for r in client.retrieve(vim.VirtualMachine, ["name"]))


def test_shared_slots_bound_tasks_and_calls_of_two_clients_together(vcenter: Any, tmp_path: Any) -> None:
    """Two sessions (as two runs would be) sharing 2 slots never have more than 2 starts in flight together."""
    first, second = VSphereClient(params(vcenter)), VSphereClient(params(vcenter))
    gauge = Gauge()
    made: dict[str, Any] = {}
    try:
        for client in (first, second):
            client.slots = Slots(tmp_path / "slots", 2)
        folder = first.get(vim.Folder, "replication-targets")
        pool = first.get(vim.ResourcePool, "replication-targets")

        def creator(name: str) -> Callable[[], Any]:
            spec = vim.vm.ConfigSpec(
                name=name, guestId="otherGuest64", files=vim.vm.FileInfo(vmPathName="[prod-ds-01]")
            )
            return gauge.wrap(lambda: folder.CreateVM_Task(config=spec, pool=pool))

        jobs = [
            threading.Thread(
                target=lambda c=client, n=n: made.update(
                    c.run_tasks([(f"slot-{n}-{i}", creator(f"slot-{n}-{i}")) for i in range(5)], 4)
                )
            )
            for n, client in enumerate((first, second))
        ]
        for job in jobs:
            job.start()
        for job in jobs:
            job.join()
        assert len(made) == 10 and gauge.peak == 2
        calls = [(name, gauge.wrap(lambda vm=vm: vm.Rename_Task("renamed-" + vm.name))) for name, vm in made.items()]
        run_calls(calls, 8, slots=first.slots)
        assert gauge.peak == 2
    finally:
        first.run_tasks(((n, vm.Destroy_Task) for n, vm in made.items()), raise_on_error=False)
        first.close()
        second.close()
