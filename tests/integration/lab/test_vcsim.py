"""The vCenter simulator lab through pyVmomi: provider model, TLS, login, each fix to govmomi 0.24.2, and
where the lab simulator is stricter than stock: the .vmx written and read back by RegisterVM_Task, the
"moved or copied?" question, static MACs outside VMware's range refused, privileges enforced for
non-administrator sessions."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from pyVim.connect import SmartConnect
from pyVim.task import TaskBlocked, WaitForTask
from pyVmomi import VmomiSupport, vim, vmodl
from support import vsphere as vs

from tenantry.lab import Endpoint, Simulator, add_directory_user

pytestmark = pytest.mark.integration

Connect = Callable[[Endpoint], Any]


def hosts_of(si: Any) -> list[Any]:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
    try:
        return sorted(view.view, key=lambda h: h.name)
    finally:
        view.Destroy()


def provider(si: Any) -> Any:
    return si.RetrieveContent().searchIndex.FindByInventoryPath("provider")


def portgroup_names(host: Any) -> list[str]:
    return [pg.spec.name for pg in host.config.network.portgroup]


@pytest.fixture
def two_hosts(vsphere_si: Any) -> tuple[Any, Any]:
    first, second = hosts_of(vsphere_si)[:2]
    return first, second


# The provider model.


def test_provider_site_model(vsphere_si: Any) -> None:
    content = vsphere_si.RetrieveContent()
    dc = provider(vsphere_si)
    assert [e.name for e in content.rootFolder.childEntity] == ["provider"]

    cluster = content.searchIndex.FindByInventoryPath("provider/host/production")
    assert isinstance(cluster, vim.ClusterComputeResource)
    names = [f"esx-prod-0{i}.lab.local" for i in (1, 2, 3)]
    assert sorted(h.name for h in cluster.host) == names

    for name in ("prod-ds-01", "prod-ds-02"):
        ds = next(d for d in dc.datastore if d.name == name)
        assert sorted(m.key.name for m in ds.host) == names

    folders = {e.name for e in dc.vmFolder.childEntity if isinstance(e, vim.Folder)}
    assert {"replication-targets", "production"} <= folders
    # The session simulator is shared: other tests add tenant pools beside it.
    assert "replication-targets" in [p.name for p in cluster.resourcePool.resourcePool]

    for host in cluster.host:
        management = next(pg for pg in host.config.network.portgroup if pg.spec.name == "management")
        assert management.spec.vswitchName == "vSwitch0"
        assert "management" in [n.name for n in host.network]
    assert len([n for n in dc.network if n.name == "management"]) == 1

    template = content.searchIndex.FindByInventoryPath("provider/vm/nested-esxi-template")
    assert template.config.template is True
    assert template.config.guestId == "vmkernel7Guest"
    assert template.config.nestedHVEnabled is True
    nics = [d for d in template.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    assert [n.backing.deviceName for n in nics] == ["management"]


# TLS and login.


def test_tls_verifies_with_the_lab_ca_only(vcenter: Endpoint) -> None:
    with (
        socket.create_connection((vcenter.hostname, vcenter.port), timeout=5) as raw,
        vcenter.ssl_context().wrap_socket(raw, server_hostname=vcenter.hostname) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    key = x509.load_der_x509_certificate(der).public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048

    with (
        socket.create_connection(("localhost", vcenter.port), timeout=5) as raw,
        vcenter.ssl_context().wrap_socket(raw, server_hostname="localhost"),
    ):
        pass  # DNS:localhost is in the certificate too

    with pytest.raises(ssl.SSLCertVerificationError):
        SmartConnect(
            host=vcenter.hostname,
            port=vcenter.port,
            user=vcenter.username,
            pwd=vcenter.password,
            sslContext=ssl.create_default_context(),  # system CAs only
        )


def test_wrong_credentials_are_rejected(vcenter: Endpoint) -> None:
    for user, password in ((vcenter.username, "wrong-password"), ("someone-else", vcenter.password)):
        with pytest.raises(vim.fault.InvalidLogin):
            SmartConnect(
                host=vcenter.hostname, port=vcenter.port, user=user, pwd=password, sslContext=vcenter.ssl_context()
            )


def test_password_stays_out_of_repr(vcenter: Endpoint) -> None:
    assert vcenter.password not in repr(vcenter)


# The fixes.


def test_api_version_is_7(vsphere_si: Any) -> None:
    assert vsphere_si.RetrieveContent().about.apiVersion == "7.0.0.0"


def test_fetch_of_unset_property_and_of_deleted_object(vsphere_si: Any) -> None:
    template = vsphere_si.RetrieveContent().searchIndex.FindByInventoryPath("provider/vm/nested-esxi-template")
    assert template.snapshot is None

    folder = provider(vsphere_si).vmFolder.CreateFolder("short-lived")
    WaitForTask(folder.Destroy_Task())
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        _ = folder.name


def test_new_filter_on_finished_task_is_reported_at_once(vsphere_si: Any) -> None:
    content = vsphere_si.RetrieveContent()
    collector = content.propertyCollector.CreatePropertyCollector()
    try:
        pq = vmodl.query.PropertyCollector

        def task_filter(task: Any) -> Any:
            return pq.FilterSpec(
                objectSet=[pq.ObjectSpec(obj=task)], propSet=[pq.PropertySpec(type=vim.Task, pathSet=["info.state"])]
            )

        first = provider(vsphere_si).vmFolder.CreateFolder("filter-probe")
        task = first.Destroy_Task()
        collector.CreateFilter(task_filter(task), True)
        update = collector.WaitForUpdatesEx("", pq.WaitOptions(maxWaitSeconds=10))
        assert update.filterSet[0].objectSet[0].obj == task

        # A task finishes while the collector waits but before a filter names it
        # (run_tasks-style fan-out): its changes go by unreported ...
        second = provider(vsphere_si).vmFolder.CreateFolder("filter-probe")
        task = second.Destroy_Task()
        assert collector.WaitForUpdatesEx(update.version, pq.WaitOptions(maxWaitSeconds=1)) is None
        # ... so the new filter's initial state must come at once, not after 10 s of silence.
        collector.CreateFilter(task_filter(task), True)
        update = collector.WaitForUpdatesEx(update.version, pq.WaitOptions(maxWaitSeconds=10))
        assert update is not None  # the stock simulator returns None after the 10 s
        assert update.filterSet[0].objectSet[0].obj == task
        changes = {c.name: c.val for c in update.filterSet[0].objectSet[0].changeSet}
        assert changes == {"info.state": "success"}
    finally:
        collector.Destroy()


def test_advanced_options_are_per_host_and_validated(two_hosts: tuple[Any, Any]) -> None:
    first, second = (h.configManager.advancedOption for h in two_hosts)
    key = "Net.FollowHardwareMac"
    kind = next(o.optionType for o in first.supportedOption if o.key == key)
    assert isinstance(kind, vim.option.LongOption) and (kind.min, kind.max) == (0, 1)

    long = VmomiSupport.vmodlTypes["long"]
    try:
        first.UpdateOptions(changedValue=[vim.option.OptionValue(key=key, value=long(1))])
        assert first.QueryOptions(key)[0].value == 1
        assert second.QueryOptions(key)[0].value == 0
        with pytest.raises(vmodl.fault.InvalidArgument):
            first.UpdateOptions(changedValue=[vim.option.OptionValue(key=key, value=long(2))])
        with pytest.raises(vim.fault.InvalidName):
            first.UpdateOptions(changedValue=[vim.option.OptionValue(key="No.Such.Option", value=long(1))])
        first.UpdateOptions(changedValue=[vim.option.OptionValue(key="Config.HostAgent.log.level", value="verbose")])
        assert first.QueryOptions("Config.HostAgent.log.level")[0].value == "verbose"
    finally:
        first.UpdateOptions(
            changedValue=[
                vim.option.OptionValue(key=key, value=long(0)),
                vim.option.OptionValue(key="Config.HostAgent.log.level", value="info"),
            ]
        )


def test_portgroup_add_update_remove_across_hosts(vsphere_si: Any, two_hosts: tuple[Any, Any]) -> None:
    first, second = two_hosts
    name = "tenant-t1-vlan101"
    spec = vim.host.PortGroup.Specification(
        name=name, vlanId=101, vswitchName="vSwitch0", policy=vim.host.NetworkPolicy()
    )
    ns1, ns2 = first.configManager.networkSystem, second.configManager.networkSystem

    ns1.AddPortGroup(portgrp=spec)
    pg = next(p for p in first.config.network.portgroup if p.spec.name == name)
    assert pg.spec.vlanId == 101 and pg.key == f"key-vim.host.PortGroup-{name}"
    assert pg.spec.policy.security is not None and pg.spec.policy.nicTeaming is not None  # stored like ESXi
    vswitch0 = next(v for v in first.config.network.vswitch if v.name == "vSwitch0")
    assert pg.key in vswitch0.portgroup and pg.vswitch == vswitch0.key
    assert name in [p.spec.name for p in ns1.networkInfo.portgroup]
    with pytest.raises(vim.fault.AlreadyExists):
        ns1.AddPortGroup(portgrp=spec)

    ns2.AddPortGroup(portgrp=spec)
    networks = [n for n in provider(vsphere_si).network if n.name == name]
    assert len(networks) == 1
    assert sorted(h.name for h in networks[0].host) == sorted([first.name, second.name])

    spec.vlanId = 102
    ns1.UpdatePortGroup(pgName=name, portgrp=spec)
    assert next(p for p in first.config.network.portgroup if p.spec.name == name).spec.vlanId == 102
    assert next(p for p in second.config.network.portgroup if p.spec.name == name).spec.vlanId == 101

    ns1.RemovePortGroup(pgName=name)
    assert name not in portgroup_names(first)
    assert [h.name for h in networks[0].host] == [second.name]
    ns2.RemovePortGroup(pgName=name)
    assert name not in [n.name for n in provider(vsphere_si).network]
    with pytest.raises(vim.fault.NotFound):
        ns2.RemovePortGroup(pgName=name)


def test_vmkernel_nic_and_its_services(two_hosts: tuple[Any, Any]) -> None:
    host = two_hosts[0]
    ns = host.configManager.networkSystem
    pg = "tenant-t2-replication"
    ns.AddPortGroup(
        portgrp=vim.host.PortGroup.Specification(
            name=pg, vlanId=202, vswitchName="vSwitch0", policy=vim.host.NetworkPolicy()
        )
    )
    ip = vim.host.IpConfig(dhcp=False, ipAddress="10.20.0.11", subnetMask="255.255.255.0")
    device = ns.AddVirtualNic(portgroup=pg, nic=vim.host.VirtualNic.Specification(ip=ip))
    try:
        assert device.startswith("vmk") and device != "vmk0"
        vnic = next(v for v in host.config.network.vnic if v.device == device)
        assert (vnic.portgroup, vnic.spec.ip.ipAddress, vnic.spec.mtu) == (pg, "10.20.0.11", 1500)

        ns.UpdateVirtualNic(device=device, nic=vim.host.VirtualNic.Specification(mtu=9000))
        vnic = next(v for v in host.config.network.vnic if v.device == device)
        assert (vnic.spec.mtu, vnic.spec.ip.ipAddress) == (9000, "10.20.0.11")

        manager = host.configManager.virtualNicManager
        manager.SelectVnicForNicType(nicType="vSphereReplication", device=device)
        selected = manager.QueryNetConfig(nicType="vSphereReplication").selectedVnic
        assert f"vSphereReplication.key-vim.host.VirtualNic-{device}" in selected
        assert manager.QueryNetConfig(nicType="vSphereBackupNFC").selectedVnic == []  # a 7.0 service type
        management = next(c for c in manager.info.netConfig if c.nicType == "management")
        assert "management.key-vim.host.VirtualNic-vmk0" in management.selectedVnic

        with pytest.raises(vim.fault.ResourceInUse):
            ns.RemovePortGroup(pgName=pg)
    finally:
        ns.RemoveVirtualNic(device=device)
        ns.RemovePortGroup(pgName=pg)
    assert device not in [v.device for v in host.config.network.vnic]


def test_firewall_rulesets_are_per_host(two_hosts: tuple[Any, Any]) -> None:
    first, second = two_hosts
    fw = first.configManager.firewallSystem

    def ssh(host: Any) -> Any:
        return next(r for r in host.config.firewall.ruleset if r.key == "sshServer")

    allowed = vim.host.Ruleset.IpList(
        allIp=False,
        ipAddress=["192.0.2.10"],
        ipNetwork=[vim.host.Ruleset.IpNetwork(network="198.51.100.0", prefixLength=24)],
    )
    try:
        fw.UpdateRuleset(id="sshServer", spec=vim.host.Ruleset.RulesetSpec(allowedHosts=allowed))
        hosts = ssh(first).allowedHosts
        assert (hosts.allIp, list(hosts.ipAddress)) == (False, ["192.0.2.10"])
        assert [(n.network, n.prefixLength) for n in hosts.ipNetwork] == [("198.51.100.0", 24)]
        assert ssh(second).allowedHosts.allIp is True

        fw.DisableRuleset(id="sshServer")
        assert ssh(first).enabled is False and ssh(second).enabled is True
        fw.EnableRuleset(id="sshServer")
        assert ssh(first).enabled is True
        with pytest.raises(vim.fault.NotFound):
            fw.UpdateRuleset(id="noSuchRuleset", spec=vim.host.Ruleset.RulesetSpec(allowedHosts=allowed))
    finally:
        fw.UpdateRuleset(
            id="sshServer", spec=vim.host.Ruleset.RulesetSpec(allowedHosts=vim.host.Ruleset.IpList(allIp=True))
        )


def nas_spec(local_path: str, export: str) -> Any:
    return vim.host.NasVolume.Specification(
        remoteHost="nfs.lab.local", remotePath=export, localPath=local_path, accessMode="readWrite", type="NFS"
    )


def test_nas_datastore_shared_by_hosts_then_removed(
    vsphere_si: Any, two_hosts: tuple[Any, Any], tmp_path: Path
) -> None:
    first, second = two_hosts
    dss1, dss2 = first.configManager.datastoreSystem, second.configManager.datastoreSystem
    spec = nas_spec(str(tmp_path / "shared-nfs"), "/exports/shared")

    ds = dss1.CreateNasDatastore(spec)
    assert dss2.CreateNasDatastore(spec) == ds
    assert (tmp_path / "shared-nfs").is_dir()
    assert [d.name for d in provider(vsphere_si).datastore].count("shared-nfs") == 1
    assert sorted(m.key.name for m in ds.host) == sorted([first.name, second.name])
    assert ds.summary.type == "NFS" and ds.info.nas.remoteHost == "nfs.lab.local"
    volumes = [m.volume.name for m in first.configManager.storageSystem.fileSystemVolumeInfo.mountInfo]
    assert "shared-nfs" in volumes and "prod-ds-01" in volumes
    with pytest.raises(vim.fault.DuplicateName):
        dss1.CreateNasDatastore(nas_spec(str(tmp_path / "shared-nfs"), "/exports/other"))

    dss1.RemoveDatastore(datastore=ds)
    assert [m.key.name for m in ds.host] == [second.name]
    assert "shared-nfs" not in [d.name for d in first.datastore]
    assert "shared-nfs" not in [m.volume.name for m in first.configManager.storageSystem.fileSystemVolumeInfo.mountInfo]
    dss2.RemoveDatastore(datastore=ds)
    assert "shared-nfs" not in [d.name for d in provider(vsphere_si).datastore]
    assert (tmp_path / "shared-nfs").is_dir()  # the "NFS server" keeps the files


def test_nas_datastore_with_relative_local_path(two_hosts: tuple[Any, Any], lab_state_dir: Path) -> None:
    dss = two_hosts[0].configManager.datastoreSystem
    ds = dss.CreateNasDatastore(nas_spec("tenant-rel-nfs", "/exports/rel"))
    try:
        assert ds.name == "tenant-rel-nfs"
        assert Path(ds.info.url).is_dir() and Path(ds.info.url).is_relative_to(lab_state_dir / "nfs")
    finally:
        dss.RemoveDatastore(datastore=ds)


def test_nfs_swing_from_esx_target_to_production(
    vsphere_si: Any, esx_factory: Callable[..., Endpoint], vsphere_connect: Connect, tmp_path: Path
) -> None:
    spec = nas_spec(str(tmp_path / "tenant-a-nfs"), "/exports/tenant-a")

    esx = vsphere_connect(esx_factory("tenant-a"))
    assert esx.RetrieveContent().about.apiType == "HostAgent"
    target_dc = esx.RetrieveContent().rootFolder.childEntity[0]
    target = hosts_of(esx)[0]
    target.configManager.datastoreSystem.CreateNasDatastore(spec)
    config = vim.vm.ConfigSpec(
        name="replica-01",
        guestId="otherGuest64",
        numCPUs=1,
        memoryMB=256,
        files=vim.vm.FileInfo(vmPathName="[tenant-a-nfs]"),
    )
    task = target_dc.vmFolder.CreateVM_Task(config=config, pool=target.parent.resourcePool, host=target)
    WaitForTask(task)
    vmx = "[tenant-a-nfs] replica-01/replica-01.vmx"
    assert task.info.result.config.files.vmPathName == vmx
    assert (tmp_path / "tenant-a-nfs" / "replica-01" / "replica-01.vmx").is_file()
    task.info.result.UnregisterVM()

    production = hosts_of(vsphere_si)[0]
    dss = production.configManager.datastoreSystem
    ds = dss.CreateNasDatastore(spec)
    folder = vsphere_si.RetrieveContent().searchIndex.FindByInventoryPath("provider/vm/replication-targets")
    task = folder.RegisterVM_Task(
        path=vmx, name="replica-01", asTemplate=False, pool=production.parent.resourcePool, host=production
    )
    WaitForTask(task)
    vm = task.info.result
    try:
        assert vm.name == "replica-01" and vm.parent == folder
        assert vm.config.files.vmPathName == vmx
        assert vm.runtime.host == production and [d.name for d in vm.datastore] == ["tenant-a-nfs"]
        with pytest.raises(vim.fault.ResourceInUse):
            dss.RemoveDatastore(datastore=ds)  # a registered VM lives on it
    finally:
        vm.UnregisterVM()
        dss.RemoveDatastore(datastore=ds)


# Latency model.


def test_latency_delays_the_named_method_and_overlaps(
    esx_factory: Callable[..., Endpoint], vsphere_connect: Connect
) -> None:
    si = vsphere_connect(esx_factory("latency", latency="CurrentTime=300ms"))

    def timed(call: Callable[[], object]) -> float:
        start = time.perf_counter()
        call()
        return time.perf_counter() - start

    fast = min(timed(si.RetrieveServiceContent) for _ in range(5))
    slow = min(timed(si.CurrentTime) for _ in range(2))
    assert slow >= 0.3
    assert slow / fast > 5

    threads = [threading.Thread(target=si.CurrentTime) for _ in range(4)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (time.perf_counter() - start) / slow < 2.5  # serialised calls would take 4x


# Shutdown.


@pytest.fixture
def govcsim_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], set[Path]]]:
    """The govcsim-* directories of the simulators this test starts: they get a TMPDIR of their own, so
    simulators of other test runs on the machine (which share /tmp) do not count."""
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    yield lambda: set(tmp.glob("govcsim-*"))


@pytest.mark.parametrize("mode", ["vcenter", "esx"])
def test_stop_leaves_no_process_and_no_temp_dirs(
    mode: Any, lab_binary: Path, lab_state_dir: Path, govcsim_dirs: Callable[[], set[Path]]
) -> None:
    with Simulator(lab_binary) as simulator:
        endpoint = simulator.start(mode, lab_state_dir, f"stop-test-{mode}")
        created = govcsim_dirs()
        assert created, "the simulator should have created its temporary datastore directories"
    assert not Path(f"/proc/{endpoint.pid}").exists()
    assert not [d for d in created if d.exists()]
    assert not (lab_state_dir / "run" / f"stop-test-{mode}.ready").exists()


# The .vmx, as ESXi writes and reads it.


@pytest.fixture
def swing(
    vsphere_si: Any, esx_factory: Callable[..., Endpoint], vsphere_connect: Connect, tmp_path: Path
) -> Iterator[Callable[..., tuple[Any, Any]]]:
    """``swing(name, devices, **config)``: a VM created on an ESX target's NFS datastore, unregistered there,
    then registered from its .vmx on a production host; returns (source config as read on the target, the
    registered VM).  Everything registered is unregistered and unmounted at the end."""
    spec = vs.nas_spec(str(tmp_path / "swing-nfs"), "/exports/swing")
    target = vs.esx_parts(vsphere_connect(esx_factory("swing")))
    target.host.configManager.datastoreSystem.CreateNasDatastore(spec)
    production = hosts_of(vsphere_si)[0]
    dss = production.configManager.datastoreSystem
    ds = dss.CreateNasDatastore(spec)
    folder = vsphere_si.RetrieveContent().searchIndex.FindByInventoryPath("provider/vm/production")
    registered: list[Any] = []

    def run(name: str, devices: list[Any], **config: Any) -> tuple[Any, Any]:
        vm = vs.create_vm(target, name, "swing-nfs", devices, **config)
        source = vm.config
        vmx = source.files.vmPathName
        vm.UnregisterVM()
        registered.append(vs.register(folder, vmx, production.parent.resourcePool, production))
        return source, registered[-1]

    yield run
    for vm in registered:
        try:
            if vm.runtime.powerState == "poweredOn":
                WaitForTask(vm.PowerOffVM_Task())
            vm.UnregisterVM()
        except vmodl.fault.ManagedObjectNotFound:
            pass  # the test unregistered it
    dss.RemoveDatastore(datastore=ds)


def test_register_reads_the_vmx(swing: Callable[..., tuple[Any, Any]], tmp_path: Path) -> None:
    devices = [
        vs.nic(None, "generated"),
        vs.nic("00:50:56:01:02:03", "manual", key=-4),
        vs.scsi(),
        vs.new_disk("swing-nfs", 4096),
    ]
    source, vm = swing("app-01", devices, guest="rhel8_64Guest", numCPUs=2, memoryMB=256, version="vmx-19")
    vmx = (tmp_path / "swing-nfs" / "app-01" / "app-01.vmx").read_text()
    assert 'ethernet1.addressType = "static"' in vmx and 'ethernet1.address = "00:50:56:01:02:03"' in vmx
    assert 'guestOS = "rhel8-64"' in vmx and 'virtualHW.version = "19"' in vmx
    assert 'scsi0:0.fileName = "app-01.vmdk"' in vmx
    assert "RW 8192 VMFS" in (tmp_path / "swing-nfs" / "app-01" / "app-01.vmdk").read_text()

    assert (vm.name, vm.config.guestId, vm.config.version) == ("app-01", "rhel8_64Guest", "vmx-19")
    assert (vm.config.hardware.numCPU, vm.config.hardware.memoryMB) == (2, 256)
    assert vm.config.uuid == source.uuid  # registered, not yet powered on: nothing asked yet
    assert vs.nics_of(vm) == [
        ("VirtualVmxnet3", source_mac(source, 0), "generated", "VM Network"),
        ("VirtualVmxnet3", "00:50:56:01:02:03", "manual", "VM Network"),
    ]
    assert vs.disks_of(vm) == [("[swing-nfs] app-01/app-01.vmdk", 4096)]
    controller = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.ParaVirtualSCSIController))
    disk = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))
    assert disk.controllerKey == controller.key and disk.unitNumber == 0


def source_mac(config: Any, index: int) -> str:
    return [d.macAddress for d in config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)][index]


def question_of(vm: Any, task: Any) -> Any:
    """The question a waiting power-on task asks."""
    deadline = time.monotonic() + 10
    while vm.runtime.question is None:
        assert time.monotonic() < deadline, "no question asked"
        time.sleep(0.05)
    assert task.info.state == "running"
    return vm.runtime.question


def test_copied_gives_a_new_uuid_and_new_generated_macs(swing: Callable[..., tuple[Any, Any]], tmp_path: Path) -> None:
    devices = [vs.nic(None, "generated"), vs.nic("00:50:56:01:02:04", "manual", key=-4)]
    source, vm = swing("copy-01", devices)
    task = vm.PowerOnVM_Task()
    question = question_of(vm, task)
    assert question.text.startswith("msg.uuid.altered:")
    assert [(c.key, c.label) for c in question.choice.choiceInfo] == [
        ("0", "button.uuid.cancel"),
        ("1", "button.uuid.movedTheVM"),
        ("2", "button.uuid.copiedTheVM"),
    ]
    vm.AnswerVM(questionId=question.id, answerChoice="2")
    WaitForTask(task)
    assert vm.runtime.powerState == "poweredOn" and vm.runtime.question is None
    assert vm.config.uuid != source.uuid
    generated, manual = vs.nics_of(vm)
    assert generated[1] != source_mac(source, 0) and generated[1].startswith("00:0c:29:")
    assert generated[1][-8:-3] == vm.config.uuid.replace("-", "")[-6:-2][:2] + ":" + vm.config.uuid[-4:-2]
    assert manual[1:3] == ("00:50:56:01:02:04", "manual")  # a static MAC stays
    vmx = (tmp_path / "swing-nfs" / "copy-01" / "copy-01.vmx").read_text()
    assert vs_uuid(vm.config.uuid) in vmx and generated[1] in vmx


def vs_uuid(uuid: str) -> str:
    raw = uuid.replace("-", "")
    pairs = [raw[i : i + 2] for i in range(0, 32, 2)]
    return " ".join(pairs[:8]) + "-" + " ".join(pairs[8:])


def test_moved_keeps_uuid_and_macs_and_cancel_asks_again(swing: Callable[..., tuple[Any, Any]]) -> None:
    source, vm = swing("move-01", [vs.nic(None, "generated")])
    task = vm.PowerOnVM_Task()
    vm.AnswerVM(questionId=question_of(vm, task).id, answerChoice="0")  # Cancel
    with pytest.raises(vmodl.fault.RequestCanceled):
        WaitForTask(task)
    assert vm.runtime.powerState == "poweredOff"

    task = vm.PowerOnVM_Task()  # asked again
    question = question_of(vm, task)
    with pytest.raises(vmodl.fault.InvalidArgument):
        vm.AnswerVM(questionId="_no_such_question", answerChoice="1")
    vm.AnswerVM(questionId=question.id, answerChoice="1")  # I moved it
    WaitForTask(task)
    assert vm.config.uuid == source.uuid
    assert [n[1] for n in vs.nics_of(vm)] == [source_mac(source, 0)]

    # uuid.location now names this host: registered here again, the VM powers on without a question.
    WaitForTask(vm.PowerOffVM_Task())
    host, pool, folder, vmx = vm.runtime.host, vm.resourcePool, vm.parent, vm.config.files.vmPathName
    vm.UnregisterVM()
    again = vs.register(folder, vmx, pool, host)
    WaitForTask(again.PowerOnVM_Task())
    WaitForTask(again.PowerOffVM_Task())
    again.UnregisterVM()


def test_unanswered_question_times_out(
    esx_factory: Callable[..., Endpoint], vsphere_connect: Connect, tmp_path: Path
) -> None:
    spec = vs.nas_spec(str(tmp_path / "q-nfs"), "/exports/q")
    first = vs.esx_parts(vsphere_connect(esx_factory("q-first")))
    second = vs.esx_parts(vsphere_connect(esx_factory("q-second", question_timeout=0.5)))
    for parts in (first, second):
        parts.host.configManager.datastoreSystem.CreateNasDatastore(spec)
    vm = vs.create_vm(first, "q-01", "q-nfs", [vs.nic()])
    vmx = vm.config.files.vmPathName
    vm.UnregisterVM()
    vm = vs.register(second.folder, vmx, second.pool, second.host)
    task = vm.PowerOnVM_Task()
    with pytest.raises(TaskBlocked):  # pyVim sees the question, as with vSphere
        WaitForTask(task)
    deadline = time.monotonic() + 10
    while task.info.state == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert isinstance(task.info.error, vim.fault.Timedout)
    assert vm.runtime.question is None and vm.runtime.powerState == "poweredOff"


# Static MACs outside 00:50:56:00:00:00-00:50:56:3F:FF:FF.


def test_manual_mac_outside_the_range_is_refused_by_vcenter(vsphere_si: Any) -> None:
    content = vsphere_si.RetrieveContent()
    folder = content.searchIndex.FindByInventoryPath("provider/vm/production")
    host = hosts_of(vsphere_si)[0]

    def create(mac: str) -> Any:
        spec = vim.vm.ConfigSpec(
            name="mac-probe",
            guestId="otherGuest64",
            files=vim.vm.FileInfo(vmPathName="[prod-ds-01]"),
            deviceChange=[vs.nic(mac, "manual")],
        )
        return folder.CreateVM_Task(config=spec, pool=host.parent.resourcePool, host=host)

    with pytest.raises(vim.fault.InvalidDeviceSpec) as refused:
        WaitForTask(create("00:50:56:40:00:01"))
    assert refused.value.msg == (
        "00:50:56:40:00:01 is not a valid static Ethernet address. "
        "It conflicts with VMware reserved MACs for other usage."
    )
    assert (refused.value.deviceIndex, refused.value.property) == (0, "virtualDeviceSpec.device.macAddress")

    task = create("00:50:56:3f:ff:fe")  # the top of the range is fine
    WaitForTask(task)
    vm = task.info.result
    try:
        with pytest.raises(vim.fault.InvalidDeviceSpec) as refused:
            WaitForTask(vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[vs.nic("00:0c:29:00:00:01", "manual")])))
        assert "Impermissible static Ethernet address: '00:0c:29:00:00:01'" in refused.value.msg
        assert [n[1] for n in vs.nics_of(vm)] == ["00:50:56:3f:ff:fe"]
    finally:
        WaitForTask(vm.Destroy_Task())


def test_registered_vmx_with_a_bad_static_mac_does_not_power_on(
    swing: Callable[..., tuple[Any, Any]],
    esx_factory: Callable[..., Endpoint],
    vsphere_connect: Connect,
    tmp_path: Path,
) -> None:
    # ESXi accepts the spec and refuses at power-on ...
    parts = vs.esx_parts(vsphere_connect(esx_factory("badmac")))
    parts.host.configManager.datastoreSystem.CreateNasDatastore(vs.nas_spec(str(tmp_path / "bad-nfs"), "/x"))
    local = vs.create_vm(parts, "bad-01", "bad-nfs", [vs.nic("00:50:56:80:00:01", "manual")])
    with pytest.raises(vim.fault.GenericVmConfigFault) as refused:
        WaitForTask(local.PowerOnVM_Task())
    assert refused.value.reason.startswith("00:50:56:80:00:01 is not a valid static Ethernet address")

    # ... and a .vmx carrying one registers in vCenter, asks, then fails to power on.
    _, vm = swing("bad-02", [vs.nic("00:50:56:7f:00:01", "manual")])
    assert vs.nics_of(vm)[0][1:3] == ("00:50:56:7f:00:01", "manual")
    task = vm.PowerOnVM_Task()
    vm.AnswerVM(questionId=question_of(vm, task).id, answerChoice="1")
    with pytest.raises(vim.fault.GenericVmConfigFault):
        WaitForTask(task)
    assert vm.runtime.powerState == "poweredOff"


# Logins and privileges (ESX mode, a non-administrator session).


def test_local_accounts_log_in_with_their_own_password(
    esx_factory: Callable[..., Endpoint], vsphere_connect: Connect
) -> None:
    ep = esx_factory("accounts")
    content = vs.esx_parts(vsphere_connect(ep)).content
    vs.local_account(content, "alice", "Alice-pw-1")
    with pytest.raises(vim.fault.InvalidLogin):
        vs.login(ep, "alice", "wrong")
    with pytest.raises(vim.fault.InvalidLogin):
        vs.login(ep, "bob", "Alice-pw-1")
    alice = vs.login(ep, "alice", "Alice-pw-1")
    assert alice.RetrieveContent().sessionManager.currentSession.userName == "alice"

    spec = vim.host.LocalAccountManager.AccountSpecification(id="alice", password="Alice-pw-2")
    content.accountManager.UpdateUser(user=spec)
    with pytest.raises(vim.fault.InvalidLogin):
        vs.login(ep, "alice", "Alice-pw-1")
    vs.login(ep, "alice", "Alice-pw-2")
    content.accountManager.RemoveUser(userName="alice")
    with pytest.raises(vim.fault.InvalidLogin):
        vs.login(ep, "alice", "Alice-pw-2")
    assert vs.datastore_file(ep, None, "GET", "LocalDS_0", "")[0] == 401  # no anonymous file access


@dataclass
class Case:
    """One method group: ``call(tenant_parts)`` needs ``needs`` (all on the entities the probe role covers)."""

    name: str
    needs: list[str]
    call: Callable[[Any], Any]
    denied: str = ""  # the privilege whose absence the NoPermission names (default: needs[0])


def test_privileges_are_enforced_per_method_group(
    esx_factory: Callable[..., Endpoint], vsphere_connect: Connect, tmp_path: Path
) -> None:
    """Each group: without the privilege NoPermission names it; with it (and nothing else it needs) the call works."""
    ep = esx_factory("privileges")
    admin = vs.esx_parts(vsphere_connect(ep))
    admin.host.configManager.datastoreSystem.CreateNasDatastore(vs.nas_spec(str(tmp_path / "p-nfs"), "/p"))
    root = admin.content.rootFolder
    vs.local_account(admin.content, "probe", "Probe-pw-1")
    vs.grant(admin.content, "probe-role", "probe", [], [root])
    tenant_si = vs.login(ep, "probe", "Probe-pw-1")
    t = vs.esx_parts(tenant_si)

    def fixture_vm(name: str) -> Any:
        return vs.create_vm(admin, name, "p-nfs", [vs.scsi()])

    snap_vm = fixture_vm("snap-vm")
    WaitForTask(snap_vm.CreateSnapshot_Task(name="s1", memory=False, quiesce=False))
    vs.datastore_file(ep, vsphere_connect(ep), "PUT", "p-nfs", "files/keep.txt", b"x")

    def as_tenant(vm: Any) -> Any:
        return vim.VirtualMachine(vm._moId, tenant_si._stub)

    def create(parts: Any) -> Any:
        vm = vs.create_vm(parts, "created", "p-nfs")
        WaitForTask(vim.VirtualMachine(vm._moId, admin.content.rootFolder._stub).Destroy_Task())

    def register(parts: Any) -> Any:
        vm = fixture_vm("reg-vm")
        vmx = vm.config.files.vmPathName
        vm.UnregisterVM()
        vs.register(parts.folder, vmx, parts.pool, parts.host)

    def lease(parts: Any) -> Any:
        spec = vim.vm.VmImportSpec(
            configSpec=vim.vm.ConfigSpec(
                name="imported", guestId="otherGuest64", files=vim.vm.FileInfo(vmPathName="[p-nfs]")
            )
        )
        nfc = parts.pool.ImportVApp(spec=spec, folder=parts.folder, host=parts.host)
        nfc.HttpNfcLeaseAbort()

    def upload(_: Any) -> None:
        status, _body = vs.datastore_file(ep, tenant_si, "PUT", "p-nfs", "files/up.txt", b"data")
        if status == 403:
            raise vim.fault.NoPermission(privilegeId="Datastore.FileManagement")
        assert status in (200, 201), status

    def download(_: Any) -> None:
        status, body = vs.datastore_file(ep, tenant_si, "GET", "p-nfs", "files/keep.txt")
        if status == 403:
            raise vim.fault.NoPermission(privilegeId="Datastore.Browse")
        assert (status, body) == (200, b"x")

    browser = next(d for d in admin.host.datastore if d.name == "p-nfs").browser._moId
    everything = vim.host.DatastoreBrowser.SearchSpec(matchPattern=["*"])
    host_pg = vim.host.PortGroup.Specification(
        name="probe-pg", vlanId=9, vswitchName="vSwitch0", policy=vim.host.NetworkPolicy()
    )
    cases = [
        Case(
            "VM create",
            ["VirtualMachine.Inventory.Create", "Resource.AssignVMToPool", "Datastore.AllocateSpace"],
            create,
        ),
        Case("VM register", ["VirtualMachine.Inventory.Register", "Resource.AssignVMToPool"], register),
        Case(
            "VM unregister",
            ["VirtualMachine.Inventory.Unregister"],
            lambda p: as_tenant(fixture_vm("unreg-vm")).UnregisterVM(),
        ),
        Case(
            "VM reconfigure",
            ["VirtualMachine.Config.Memory"],
            lambda p: WaitForTask(as_tenant(snap_vm).ReconfigVM_Task(vim.vm.ConfigSpec(memoryMB=128))),
        ),
        Case(
            "VM destroy",
            ["VirtualMachine.Inventory.Delete"],
            lambda p: WaitForTask(as_tenant(fixture_vm("del-vm")).Destroy_Task()),
        ),
        Case(
            "snapshot create",
            ["VirtualMachine.State.CreateSnapshot"],
            lambda p: WaitForTask(as_tenant(snap_vm).CreateSnapshot_Task(name="s2", memory=False, quiesce=False)),
        ),
        Case(
            "snapshot revert",
            ["VirtualMachine.State.RevertToSnapshot"],
            lambda p: WaitForTask(as_tenant(snap_vm).RevertToCurrentSnapshot_Task()),
        ),
        Case(
            "snapshot remove",
            ["VirtualMachine.State.RemoveSnapshot"],
            lambda p: WaitForTask(as_tenant(snap_vm).RemoveAllSnapshots_Task()),
        ),
        Case(
            "power on", ["VirtualMachine.Interact.PowerOn"], lambda p: WaitForTask(as_tenant(snap_vm).PowerOnVM_Task())
        ),
        Case(
            "power off",
            ["VirtualMachine.Interact.PowerOff"],
            lambda p: WaitForTask(as_tenant(snap_vm).PowerOffVM_Task()),
        ),
        Case("datastore upload", ["Datastore.FileManagement"], upload),
        Case("datastore download", ["Datastore.Browse"], download),
        Case(
            "datastore browse",
            ["Datastore.Browse"],
            lambda p: WaitForTask(
                vim.host.DatastoreBrowser(browser, tenant_si._stub).SearchDatastore_Task(
                    datastorePath="[p-nfs] files", searchSpec=everything
                )
            ),
        ),
        Case(
            "datastore delete",
            ["Datastore.DeleteFile"],
            lambda p: WaitForTask(
                p.content.fileManager.DeleteDatastoreFile_Task(name="[p-nfs] files/up.txt", datacenter=p.dc)
            ),
        ),
        Case("NFC lease (import)", ["VApp.Import"], lease),
        Case(
            "port group",
            ["Host.Config.Network"],
            lambda p: p.host.configManager.networkSystem.AddPortGroup(portgrp=host_pg),
        ),
        Case(
            "firewall",
            ["Host.Config.NetService"],
            lambda p: p.host.configManager.firewallSystem.DisableRuleset(id="sshServer"),
        ),
        Case(
            "services",
            ["Host.Config.NetService"],
            lambda p: p.host.configManager.serviceSystem.StartService(id="TSM-SSH"),
        ),
        Case(
            "advanced options",
            ["Host.Config.AdvancedConfig"],
            lambda p: p.host.configManager.advancedOption.UpdateOptions(
                changedValue=[vim.option.OptionValue(key="Misc.PreferredHostName", value="x")]
            ),
        ),
        Case(
            "datastores",
            ["Host.Config.Storage"],
            lambda p: p.host.configManager.datastoreSystem.CreateNasDatastore(
                vs.nas_spec(str(tmp_path / "p2-nfs"), "/p2")
            ),
        ),
        Case(
            "accounts",
            ["Host.Local.ManageUserGroups"],
            lambda p: p.content.accountManager.CreateUser(
                user=vim.host.LocalAccountManager.AccountSpecification(id="made-by-probe", password="x-Y-1")
            ),
        ),
        Case(
            "permissions",
            ["Authorization.ModifyPermissions"],
            lambda p: p.content.authorizationManager.RemoveEntityPermission(entity=p.dc, user="nobody", isGroup=False),
        ),
    ]

    def terminate(parts: Any) -> None:
        other = vs.login(ep, ep.username, ep.password).RetrieveContent().sessionManager.currentSession.key
        parts.content.sessionManager.TerminateSession(sessionId=[other])

    cases.append(Case("terminate a session", ["Sessions.TerminateSession"], terminate))

    def custom_task(parts: Any) -> Any:
        return parts.content.taskManager.CreateTask(
            obj=parts.folder, taskTypeId="com.example.replicate", initiatedBy="probe", cancelable=False
        )

    admin_task = custom_task(admin).task._moId
    cases.append(Case("custom task: create", ["Task.Create"], custom_task))
    cases.append(
        Case(
            "custom task: update",
            ["Task.Update"],
            lambda p: vim.Task(admin_task, tenant_si._stub).UpdateProgress(percentDone=50),
        )
    )
    for case in cases:
        denied = case.denied or case.needs[0]
        vs.grant(admin.content, "probe-role", "probe", [n for n in case.needs if n != denied], [root])
        fault = vs.no_permission(lambda call=case.call: call(t))
        assert fault.privilegeId == denied, (case.name, fault.privilegeId)
        vs.grant(admin.content, "probe-role", "probe", case.needs, [root])
        case.call(t)  # now allowed
    done = vim.Task(admin_task, admin.content.rootFolder._stub)
    done.SetTaskState(state="success")
    assert (done.info.state, done.info.progress) == ("success", 50)
    # A task the tenant started is the tenant's to read and wait for.
    vs.grant(admin.content, "probe-role", "probe", ["VirtualMachine.Interact.PowerOn"], [root])
    task = as_tenant(snap_vm).PowerOnVM_Task()
    WaitForTask(task)
    assert task.info.state == "success" and task.info.entity == as_tenant(snap_vm)


def test_vcenter_directory_accounts_and_console_tickets(
    vcenter: Endpoint, vsphere_si: Any, lab_state_dir: Path, swing: Callable[..., tuple[Any, Any]]
) -> None:
    """vcenter mode: a directory account (the SSO stand-in) logs in with its own password only and is found
    by RetrieveUserGroups; a console ticket needs ConsoleInteract and a powered-on VM.  NICs read from a
    .vmx carry vSphere's labels."""
    add_directory_user(lab_state_dir, "vcenter", "dir-user@vsphere.local", "Dir-Secret-1")
    directory = vsphere_si.RetrieveContent().userDirectory
    found = directory.RetrieveUserGroups(
        searchStr="dir-user@vsphere.local", exactMatch=True, findUsers=True, findGroups=False
    )
    assert [u.principal for u in found] == ["dir-user@vsphere.local"]
    with pytest.raises(vim.fault.InvalidLogin):
        vs.login(vcenter, "dir-user@vsphere.local", "wrong")
    user = vs.login(vcenter, "dir-user@vsphere.local", "Dir-Secret-1")
    assert user.content.sessionManager.currentSession.userName == "dir-user@vsphere.local"

    _source, vm = swing("console-01", [vs.nic(None, "generated"), vs.nic(None, "generated", key=-5)])
    assert [
        d.deviceInfo.label for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)
    ] == [
        "Network adapter 1",
        "Network adapter 2",
    ]
    with pytest.raises(vim.fault.InvalidState):
        vm.AcquireTicket(ticketType="webmks")
    task = vm.PowerOnVM_Task()
    vm.AnswerVM(questionId=question_of(vm, task).id, answerChoice="1")
    WaitForTask(task)
    assert vm.AcquireTicket(ticketType="webmks").ticket
    theirs = user.RetrieveContent().searchIndex.FindByUuid(None, vm.config.uuid, True)
    with pytest.raises(vim.fault.NoPermission) as refused:
        theirs.AcquireTicket(ticketType="webmks")
    assert refused.value.privilegeId == "VirtualMachine.Interact.ConsoleInteract"
