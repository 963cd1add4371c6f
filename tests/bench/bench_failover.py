"""Benchmark: failover at scale against the simulator, every ratio measured in one run.

Contenders (each fails over its own tenants, of the same size, built the same way):

- ours: ``ansible-playbook playbooks/failover.yml`` per tenant (the role, the module, progress
  following), as a tenant pressing the button runs it;
- lower bound: one plain pyVmomi script doing the product's vSphere work and nothing else (no checks,
  no journal): the same calls in the same order (mount, register, unregister, one reconfiguration per
  VM editing its NICs onto the destination portgroup and writing the tags, permissions, power on with
  "moved or copied?" answered "I Moved It", storage vMotion, unmount), each step's calls for all the
  VMs at once through one pool of ``--max-parallel`` threads toward vCenter (and as many per
  replication target), each task finished by the thread that started it;
- naive (unless ``--skip-naive``): ``tests/bench/failover/naive_failover.yml``, the same nine steps
  with community.vmware modules in per-VM loops.

Scenarios and targets:

1. 100 VMs, the machine otherwise idle: ours <= 1.25x the lower bound;
2. the same under the bench's own background load (``--load`` busy processes): ours <= 1.25x;
3. a regional disaster: 20 tenants x 50 VMs fail over at once, as 20 concurrent playbook runs that
   share one limit toward vCenter (``failover_vcenter_max_parallel`` = ``--max-parallel``), against the
   lower bound for the same 1,000 VMs with the same limit: ours <= 1.3x;
4. growth: seconds per VM for 10, 100 and 1,000 VMs must fall, not rise;
5. naive / ours >= 10 (scenario 1's tenant size).

The simulators (a production vCenter per scenario and contender, a nested target per tenant) get a
per-method latency that models a vCenter (``--latency``); every task still completes inside the
call that started it (but a power-on, which waits for the answer), so what is measured is client round
trips and their overlap.  Each contender's outcome is checked the same way (``verify``): every VM
registered in production only, from its replica's .vmx, powered on with no question left, the
replica's UUID and MACs kept (answered "moved"), each of its NICs and no other on the destination
portgroup, tagged, on production datastores; the NFS datastore unmounted.

    .venv/bin/python tests/bench/bench_failover.py [--skip-naive] [--skip-regional] [--load 1]
"""

from __future__ import annotations

import argparse
import compileall
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "src"), str(REPO / ".collections"), str(REPO / "tests" / "integration" / "failover")]

import failoverlab as fl  # noqa: E402
from pyVim.connect import Disconnect, SmartConnect  # noqa: E402
from pyVmomi import vim, vmodl  # noqa: E402

from tenantry.common.proctree import kill_tree  # noqa: E402
from tenantry.lab import Endpoint, Simulator, build  # noqa: E402

LATENCY = (
    "RegisterVM=200ms,UnregisterVM=50ms,ReconfigVM_Task=100ms,PowerOnVM_Task=150ms,RelocateVM_Task=200ms,"
    "SetEntityPermissions=50ms,CreateNasDatastore=200ms,RemoveDatastore=100ms,*=5ms"
)
DATASTORES = ["prod-ds-01", "prod-ds-02"]
HOST = "esx-prod-01.lab.local"


def connect(ep: Endpoint) -> Any:
    return SmartConnect(host=ep.hostname, port=ep.port, user=ep.username, pwd=ep.password, sslContext=ep.ssl_context())


def prepare(vc_si: Any, target_si: Any, spec: dict[str, Any], count: int) -> tuple[list[str], dict[str, Replica]]:
    """A tenant's replicas on its target, its portgroups, folder and pool in production; what each replica
    is (UUID, NICs) so that the outcome can be compared with it."""
    names = [f"{spec['name']}-vm{i:03d}" for i in range(1, count + 1)]
    fl.build_target(target_si, spec, names, memory_mb=8, disk_kb=1024)
    fl.add_portgroups(vc_si, spec)
    content = vc_si.RetrieveContent()
    tenants = content.searchIndex.FindByInventoryPath("provider/vm/tenants")
    if tenants is None:
        try:
            tenants = content.searchIndex.FindByInventoryPath("provider/vm").CreateFolder("tenants")
        except vim.fault.DuplicateName:  # another tenant of the site, prepared at the same time, made it
            tenants = content.searchIndex.FindByInventoryPath("provider/vm/tenants")
    tenants.CreateFolder(spec["name"])  # folder and pool exist for every contender alike
    cluster = content.searchIndex.FindByInventoryPath("provider/host/production")
    allocation = vim.ResourceAllocationInfo(
        reservation=0, limit=-1, expandableReservation=True, shares=vim.SharesInfo(level="normal", shares=0)
    )
    cluster.resourcePool.CreateResourcePool(
        spec["production"]["resource_pool"],
        vim.ResourceConfigSpec(cpuAllocation=allocation, memoryAllocation=allocation),
    )
    return names, {r.name: r for r in read_vms(target_si)}


@dataclass
class Replica:
    """What the bench needs of a VM, read in bulk: on a target before, or in production after."""

    name: str
    obj: Any
    vmx: str
    uuid: str
    nics: list[tuple[str, str, str]]  # (label, MAC, network name) of each NIC, in device order
    devices: list[Any]  # the NIC devices themselves (to edit them)
    power: str = ""
    question: Any = None
    datastores: list[str] | None = None  # moids
    parent: str = ""  # moid
    extra: dict[str, str] | None = None


def read_vms(si: Any, root: Any = None, production: bool = False) -> list[Replica]:
    """Every VM under ``root`` (default: everywhere) in ONE property read; ``production`` adds what the
    outcome is checked on (power, question, datastores, folder, tags)."""
    c = si.RetrieveContent()
    view = c.viewManager.CreateContainerView(root or c.rootFolder, [vim.VirtualMachine], True)
    pq = vmodl.query.PropertyCollector
    paths = ["name", "config.files.vmPathName", "config.uuid", "config.hardware.device"]
    if production:
        paths += ["runtime.powerState", "runtime.question", "datastore", "parent", "config.extraConfig"]
    spec = pq.FilterSpec(
        objectSet=[
            pq.ObjectSpec(
                obj=view,
                skip=True,
                selectSet=[pq.TraversalSpec(name="v", path="view", skip=False, type=vim.view.ContainerView)],
            )
        ],
        propSet=[pq.PropertySpec(type=vim.VirtualMachine, pathSet=paths)],
    )
    rows = []
    try:
        for obj in c.propertyCollector.RetrieveContents([spec]):
            props = {p.name: p.val for p in obj.propSet}
            cards = [
                d for d in props.get("config.hardware.device") or [] if isinstance(d, vim.vm.device.VirtualEthernetCard)
            ]
            rows.append(
                Replica(
                    name=props["name"],
                    obj=obj.obj,
                    vmx=props.get("config.files.vmPathName", ""),
                    uuid=props.get("config.uuid", ""),
                    nics=[
                        (d.deviceInfo.label if d.deviceInfo else "", (d.macAddress or "").lower(), d.backing.deviceName)
                        for d in cards
                    ],
                    devices=cards,
                    power=str(props.get("runtime.powerState", "")),
                    question=props.get("runtime.question"),
                    datastores=[d._moId for d in props.get("datastore") or []],
                    parent=props["parent"]._moId if props.get("parent") is not None else "",
                    extra={str(o.key): str(o.value) for o in props.get("config.extraConfig") or []},
                )
            )
    finally:
        view.Destroy()
    return rows


def verify(vc_si: Any, target_si: Any, spec: dict[str, Any], replicas: dict[str, Replica], naive: bool = False) -> str:
    """'ok' when every VM is failed over as it should be, else what is wrong; the same check for every contender.

    Each VM: registered in production only (the tenant's folder), from the replica's .vmx, powered on with no
    question left (answered "I Moved It": the replica's UUID and MACs kept), each NIC of the replica (and no
    other) on the destination portgroup, tagged with its tenant, on production datastores; the NFS datastore
    unmounted.

    ``naive``: community.vmware's vmware_vmotion calls RefreshStorageInfo after the move; the simulator,
    whose storage vMotion moves no file, then lists the NFS datastore again beside the production one
    and refuses the final unmount (a simulator gap, not the baseline's fault): accept that.
    """
    content = vc_si.RetrieveContent()
    dc = content.searchIndex.FindByInventoryPath("provider")
    left = {r.name for r in read_vms(target_si)} & set(replicas)
    if left:
        return f"{len(left)} VMs still registered on the target, e.g. {sorted(left)[0]}"
    folder = fl.tenant_folder(vc_si, spec)
    found = {r.name: r for r in read_vms(vc_si, folder, production=True) if r.parent == folder._moId}
    if set(found) != set(replicas):
        missing = sorted(set(replicas) - set(found))
        return f"{len(missing)} VMs not in the tenant's production folder, e.g. {missing[:1]}"
    pg = next(iter(spec["portgroups"]["destinations"].values()))
    stores = {content.searchIndex.FindChild(dc.datastoreFolder, n)._moId for n in DATASTORES}
    for name, vm in sorted(found.items()):
        before = replicas[name]
        if vm.vmx != before.vmx:
            return f"{name} is registered from {vm.vmx}, not {before.vmx}"
        if vm.power != "poweredOn" or vm.question is not None:
            return f"{name} is {vm.power}" + (" and waits at a question" if vm.question is not None else "")
        if vm.uuid != before.uuid:
            return f"{name} has a new UUID (answered 'copied', not 'moved')"
        expected = [(label, mac, pg) for label, mac, _network in before.nics]
        if vm.nics != expected:
            return f"{name} has NICs {vm.nics}, expected {expected}"
        if (vm.extra or {}).get("tenantry.tenant", spec["name"] if naive else None) != spec["name"]:
            return f"{name} is not tagged with its tenant"
        on = set(vm.datastores or [])
        if not (on & stores if naive else on <= stores):
            return f"{name} is on {sorted(on)}"
    if naive:
        return "ok (but for the unmount the simulator refuses, see verify())"
    if content.searchIndex.FindChild(dc.datastoreFolder, spec["nfs"]["datastore"]) is not None:
        return "the NFS datastore is still mounted"
    return "ok"


# ---------------------------------------------------------------------------- tenants
@dataclass
class Tenant:
    """One tenant of a contender: its file, its nested target (endpoint and session), its VMs."""

    data: dict[str, Any]
    spec: dict[str, Any]
    target: Endpoint
    target_si: Any
    names: list[str]
    replicas: dict[str, Replica]

    @property
    def name(self) -> str:
        return str(self.spec["name"])


@dataclass
class Site:
    """A contender's production vCenter and its tenants."""

    vcenter: Endpoint
    vc_si: Any
    tenants: list[Tenant]

    @property
    def vms(self) -> int:
        return sum(len(t.names) for t in self.tenants)

    def verify(self, naive: bool = False) -> str:
        results = [(t.name, verify(self.vc_si, t.target_si, t.spec, t.replicas, naive)) for t in self.tenants]
        bad = [(n, v) for n, v in results if not v.startswith("ok")]
        if bad:
            return f"{len(bad)} of {len(results)} tenants wrong, e.g. {bad[0][0]}: {bad[0][1]}"
        return results[0][1]


class Lab:
    """Simulators for the whole bench; one state folder (``/tmp/bench-failover-*``) shares the NFS root and
    holds the runs' inventories, journals, reports, job files and logs. :meth:`stop` stops the simulators and
    removes that folder, unless ``--keep-state`` (``main`` calls it in ``finally``: also after an error, Ctrl-C
    or SIGTERM)."""

    MARK = "TENANTRY_BENCH_LAB"  # in the environment of every process the bench starts: its state folder

    def __init__(self, latency: str) -> None:
        self.binary = build()
        self.state = Path(tempfile.mkdtemp(prefix="bench-failover-"))
        os.environ[self.MARK] = str(self.state)
        self.latency = latency
        self.sims: list[Simulator] = []
        self.next_id = 0

    def start(self, mode: str, name: str) -> Endpoint:
        sim = Simulator(self.binary)
        self.sims.append(sim)
        return sim.start(mode, self.state, name, latency=self.latency)  # type: ignore[arg-type]

    def end_runs(self) -> None:
        """SIGKILL what the bench started and still runs (playbooks, their workers, the failover jobs that
        left their trees), found by :attr:`MARK` in their environment; the simulators are stopped apart."""
        mark = f"{self.MARK}={self.state}".encode()
        for _ in range(50):  # until none is left (a dying playbook's worker may just have started a job)
            found = []
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit() or int(entry.name) == os.getpid():
                    continue
                try:
                    marked = mark in (entry / "environ").read_bytes().split(b"\0")
                    marked = marked and (entry / "exe").resolve() != self.binary.resolve()
                except OSError:
                    continue
                if marked:
                    found.append(int(entry.name))
            if not found:
                return
            for pid in found:
                kill_tree(pid)
            time.sleep(0.1)

    def site(self, label: str, tenants: int, vms: int) -> Site:
        """A production vCenter with ``tenants`` tenants of ``vms`` VMs, each on its own nested target."""
        vcenter = self.start("vcenter", f"vc-{label}")
        vc_si = connect(vcenter)
        made = []
        for _ in range(tenants):
            self.next_id += 1
            tid, name = 900 + self.next_id, f"b{label}{self.next_id:02d}"
            args = (name, tid, 2000 + tid, [3000 + tid])
            made.append((fl.tenant_data(*args), fl.tenant_spec(*args), self.start("esx", name)))

        def build_one(item: tuple[dict[str, Any], dict[str, Any], Endpoint]) -> Tenant:
            data, spec, target = item
            target_si = connect(target)
            return Tenant(data, spec, target, target_si, *prepare(vc_si, target_si, spec, vms))

        with ThreadPoolExecutor(max_workers=4) as pool:
            return Site(vcenter, vc_si, list(pool.map(build_one, made)))

    def stop(self, keep_state: bool = False) -> None:
        try:
            self.end_runs()  # an interrupted bench: its playbooks and failover jobs would write here on
            for sim in self.sims:
                sim.stop()
        finally:
            self.sims.clear()
            if keep_state:
                print(f"state kept in {self.state}")
            else:
                shutil.rmtree(self.state, ignore_errors=True)


# ------------------------------------------------------------------------ lower bound
MOVED = "button.uuid.movedTheVM"  # the label of the "I Moved It" choice of "moved or copied?"


def finish(si: Any, task: Any, vm: Any = None) -> Any:
    """In the thread that started ``task``: read its state (and ``vm``'s question, in the same read) until it
    ends, answering "moved or copied?" with "I Moved It" at once; its result, or raise its error."""
    pq = vmodl.query.PropertyCollector
    objects, props = (
        [pq.ObjectSpec(obj=task)],
        [pq.PropertySpec(type=vim.Task, pathSet=["info.state", "info.error", "info.result"])],
    )
    if vm is not None:
        objects.append(pq.ObjectSpec(obj=vm))
        props.append(pq.PropertySpec(type=vim.VirtualMachine, pathSet=["runtime.question"]))
    spec, pause, answered = pq.FilterSpec(objectSet=objects, propSet=props), 0.02, set()
    collector = si.content.propertyCollector
    while True:
        rows = {o.obj._moId: {p.name: p.val for p in o.propSet or []} for o in collector.RetrieveContents([spec])}
        state = rows[task._moId]
        if state.get("info.state") == "success":
            return state.get("info.result")
        if state.get("info.state") == "error":
            raise RuntimeError(state.get("info.error"))
        question = rows.get(vm._moId, {}).get("runtime.question") if vm is not None else None
        if question is not None and question.id not in answered:
            answered.add(question.id)
            choice = next(c.key for c in question.choice.choiceInfo if c.label == MOVED)
            vm.AnswerVM(questionId=question.id, answerChoice=choice)
            continue
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


def lower_bound(site: Site, fanout: int) -> float:
    """The product's vSphere work with plain pyVmomi for every VM of the site, and nothing else (no checks,
    no journal): the same calls in the same order, each step's calls at once through one pool of
    ``fanout`` threads toward vCenter (and one of ``fanout`` per nested target), each task finished
    (read, and a power-on's question answered) by the thread that started it."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1 + len(site.tenants)) as logins:
        vc, *targets = logins.map(connect, [site.vcenter] + [t.target for t in site.tenants])
    for si in (vc, *targets):
        si._stub.poolSize = fanout + 2  # pyVmomi keeps 5 connections: the others would log in anew
    vc_pool = ThreadPoolExecutor(max_workers=fanout)
    try:

        def each(fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
            return list(vc_pool.map(fn, items))

        # read: every VM on every target, its .vmx path and NICs (one bulk read each, at once)
        with ThreadPoolExecutor(max_workers=len(targets)) as readers:
            rows = [r for found in readers.map(read_vms, targets) for r in found]
        by_tenant = {t.name: [r for r in rows if r.name in t.names] for t in site.tenants}
        c = vc.RetrieveContent()
        dc = c.searchIndex.FindByInventoryPath("provider")
        host = c.searchIndex.FindByInventoryPath(f"provider/host/production/{HOST}")
        # mount: each tenant's NFS datastore on the production host
        each(lambda t: host.configManager.datastoreSystem.CreateNasDatastore(fl.nas_spec(t.spec)), site.tenants)
        # register: in production (each tenant's folder and pool), before anything leaves the target
        places = {
            t.name: (
                c.searchIndex.FindByInventoryPath(f"provider/vm/tenants/{t.name}"),
                c.searchIndex.FindByInventoryPath(
                    f"provider/host/production/Resources/{t.spec['production']['resource_pool']}"
                ),
            )
            for t in site.tenants
        }
        work = [(t, r) for t in site.tenants for r in by_tenant[t.name]]

        def register(item: tuple[Tenant, Replica]) -> Any:
            tenant, row = item
            folder, pool = places[tenant.name]
            return finish(
                vc, folder.RegisterVM_Task(path=row.vmx, name=row.name, asTemplate=False, pool=pool, host=host)
            )

        vms = each(register, work)
        # unregister: from the targets (each target its own pool of fanout)
        with ThreadPoolExecutor(max_workers=len(targets)) as sides:
            list(sides.map(lambda rs: each_on(fanout, lambda r: r.obj.UnregisterVM(), rs), by_tenant.values()))
        # network: the registrations' NICs (one bulk read per tenant folder), then one reconfiguration per VM:
        # every NIC edited onto the destination portgroup, and the tags
        registered = {r.name: r for t in site.tenants for r in read_vms(vc, places[t.name][0]) if r.name in t.names}
        networks = {t.name: next(iter(t.spec["portgroups"]["destinations"].values())) for t in site.tenants}
        nets = {pg: c.searchIndex.FindChild(dc.networkFolder, pg) for pg in networks.values()}

        def reconfigure(item: tuple[Tenant, Replica]) -> Any:
            tenant, row = item
            pg, vm = networks[tenant.name], registered[row.name]
            changes = []
            for device in vm.devices:
                device.backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=pg, network=nets[pg])
                changes.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=device))
            tags = {
                "tenantry.tenant": tenant.name,
                "tenantry.origin.vmx": row.vmx,
                "tenantry.origin.target": f"{tenant.name}-target-01",
                "tenantry.origin.networks": json.dumps(
                    [
                        {"key": d.key, "label": label, "network": network}
                        for d, (label, _mac, network) in zip(row.devices, row.nics, strict=True)
                    ],
                    sort_keys=True,
                    separators=(",", ":"),
                ),
            }
            spec = vim.vm.ConfigSpec(
                deviceChange=changes, extraConfig=[vim.option.OptionValue(key=k, value=v) for k, v in tags.items()]
            )
            return finish(vc, vm.obj.ReconfigVM_Task(spec=spec))

        each(reconfigure, work)
        # permissions: the tenant's account on each VM
        perm = vim.AuthorizationManager.Permission(principal="admin", group=False, roleId=-1, propagate=True)
        each(lambda vm: c.authorizationManager.SetEntityPermissions(entity=vm, permission=[perm]), vms)
        # power on: "moved or copied?" answered "I Moved It" by the thread that started the power-on
        each(lambda vm: finish(vc, vm.PowerOnVM_Task(), vm), vms)
        # relocate: storage vMotion to the production datastores
        stores = [c.searchIndex.FindChild(dc.datastoreFolder, name) for name in DATASTORES]
        each(
            lambda iv: finish(vc, iv[1].RelocateVM_Task(spec=vim.vm.RelocateSpec(datastore=stores[iv[0] % 2]))),
            list(enumerate(vms)),
        )
        # unmount: each tenant's NFS datastore
        nfs = [c.searchIndex.FindChild(dc.datastoreFolder, t.spec["nfs"]["datastore"]) for t in site.tenants]
        each(lambda ds: host.configManager.datastoreSystem.RemoveDatastore(ds), nfs)
    finally:
        vc_pool.shutdown()
        for si in (vc, *targets):
            Disconnect(si)
    return time.monotonic() - started


def each_on(fanout: int, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=fanout) as pool:
        return list(pool.map(fn, items))


# --------------------------------------------------------------------------- playbooks
def ansible_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # The failover's detached job imports the library as any Python program does, from bytecode that
    # Python caches next to it (main() compiles it before the clock starts). This machine's environment
    # sets PYTHONDONTWRITEBYTECODE, which would have every run compile the library anew (0.05-0.15 s of
    # each run's start), a cost no controller with a writable collection folder pays.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORKS="5",
    )
    env.update(extra)
    return env


def ours(lab: Lab, site: Site, label: str, fanout: int) -> tuple[float, list[int]]:
    """Every tenant of the site presses its button at once: one ``failover.yml`` run each, all together,
    sharing one journal folder and so one limit of ``fanout`` toward vCenter."""
    folder = lab.state / label
    inventory = fl.write_inventory(folder / "inventory", site.vcenter, [(t.data, t.target) for t in site.tenants])
    playbook = str(Path(sys.executable).parent / "ansible-playbook")
    started = time.monotonic()
    procs = []
    for tenant in site.tenants:
        command = [
            playbook,
            str(REPO / "playbooks" / "failover.yml"),
            "-i",
            str(inventory),
            "-e",
            f"tenant={tenant.name}",
            "-e",
            f"failover_max_parallel={fanout}",
            "-e",
            f"failover_vcenter_max_parallel={fanout}",
            "-e",
            f"failover_journal_dir={folder}/journal",
            "-e",
            f"failover_report_dir={folder}/reports",
        ]
        log = (folder / f"{tenant.name}.log").open("w")
        env = ansible_env(ANSIBLE_ASYNC_DIR=str(folder / "async"))  # a job file left behind goes with the lab
        procs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO))
    codes = [p.wait() for p in procs]
    return time.monotonic() - started, codes


def module_seconds(lab: Lab, label: str) -> tuple[float, float]:
    """How long the failover modules themselves ran (the first run's start to the last one's end), and the
    longest power-on step of a run (from the reports)."""
    reports = [json.loads(p.read_text()) for p in (lab.state / label / "reports").glob("*/*.json")]
    if not reports:
        return float("nan"), float("nan")
    stamp = time.strptime
    starts = [
        time.mktime(stamp(r["started"][:19], "%Y-%m-%dT%H:%M:%S")) + float(r["started"][20:23]) / 1000 for r in reports
    ]
    ends = [start + r["seconds"] for start, r in zip(starts, reports, strict=True)]
    power = [s.get("seconds") or 0.0 for r in reports for s in r["steps"] if s["step"] == "power_on"]
    return max(ends) - min(starts), max(power, default=float("nan"))


def naive(lab: Lab, site: Site) -> tuple[float, int]:
    tenant = site.tenants[0]
    spec, vcenter = tenant.spec, site.vcenter
    variables = {
        "bench_tenant": spec["name"],
        "bench_host": HOST,
        "bench_target_esxi": fl.esx_parts(tenant.target_si)[1].name,
        "bench_datastores": DATASTORES,
        "bench_portgroup": next(iter(spec["portgroups"]["destinations"].values())),
        "bench_nfs_datastore": spec["nfs"]["datastore"],
        "bench_nfs_server": spec["nfs"]["server"],
        "bench_nfs_path": spec["nfs"]["path"],
        **{f"bench_target_{k}": v for k, v in fl.connection(tenant.target).items() if k != "ca_file"},
        **{f"bench_vcenter_{k}": v for k, v in fl.connection(vcenter).items() if k != "ca_file"},
    }
    vars_file = lab.state / "naive-vars.json"
    vars_file.write_text(json.dumps(variables))
    vars_file.chmod(0o600)
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        str(REPO / "tests/bench/failover/naive_failover.yml"),
        "-i",
        "localhost,",
        "-e",
        f"@{vars_file}",
    ]
    started = time.monotonic()
    with (lab.state / "naive.log").open("w") as out:
        # community.vmware has no CA-file option; pyVmomi's default context reads SSL_CERT_FILE.
        env = ansible_env(SSL_CERT_FILE=str(vcenter.ca_file))
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO).returncode
    return time.monotonic() - started, code


# ---------------------------------------------------------------------------- scenarios
@contextmanager
def background_load(processes: int) -> Iterator[None]:
    """The bench's own load: ``processes`` busy loops (CPU only), stopped afterwards."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        time.sleep(1)  # let the load average notice
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def load() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"load {one:.2f} (1 min), {five:.2f} (5 min)"


@dataclass
class Figure:
    label: str
    vms: int
    ours: float
    lower: float
    outcome: str

    @property
    def ratio(self) -> float:
        return self.ours / self.lower


def compare(lab: Lab, label: str, tenants: int, vms: int, fanout: int, repeat: int = 1) -> Figure:
    """Ours and the lower bound, alternately ``repeat`` times, each time on its own vCenter with its own
    tenants of the same size; the figure is the median of each (every run is printed)."""
    mine_all, theirs_all, outcomes = [], [], []
    for attempt in range(repeat):
        tag = f"{label}{attempt}" if repeat > 1 else label
        mine, theirs = lab.site(tag + "o", tenants, vms), lab.site(tag + "l", tenants, vms)
        before = load()
        seconds, codes = ours(lab, mine, tag, fanout)
        outcome = mine.verify() if not any(codes) else f"rc {sorted(set(codes))}"
        inside, power_on = module_seconds(lab, tag)
        between = load()
        lower = lower_bound(theirs, fanout)
        lower_outcome = theirs.verify()
        print(
            f"  {tag}: {tenants} x {vms} VMs: ours {seconds:6.1f} s ({outcome}; modules {inside:.1f} s, "
            f"power-on step {power_on:.1f} s) [{before}]; lower bound {lower:6.1f} s ({lower_outcome}) "
            f"[{between}]; ratio {seconds / lower:.2f}",
            flush=True,
        )
        mine_all.append(seconds)
        theirs_all.append(lower)
        outcomes += [outcome, lower_outcome]
        lab.stop()  # the next run starts on fresh simulators
    bad = [o for o in outcomes if not o.startswith("ok")]
    return Figure(
        label, tenants * vms, statistics.median(mine_all), statistics.median(theirs_all), bad[0] if bad else "ok"
    )


def verdict(value: float, target: float, above: bool = False) -> str:
    met = value >= target if above else value <= target
    return "met" if met else "NOT met"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=100, help="VMs of the single-tenant scenarios")
    parser.add_argument("--tenants", type=int, default=20, help="tenants of the regional disaster")
    parser.add_argument("--tenant-vms", type=int, default=50, help="VMs per tenant in the regional disaster")
    parser.add_argument("--max-parallel", type=int, default=16, help="the limit toward vCenter, ours and lower bound")
    parser.add_argument("--load", type=int, default=1, help="busy processes of the loaded scenario")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each single-tenant scenario (medians)")
    parser.add_argument("--latency", default=LATENCY)
    parser.add_argument("--naive-vms", type=int, help="VMs for the naive playbook (default: --vms)")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--skip-regional", action="store_true")
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--skip-single", action="store_true", help="only the regional disaster (and naive)")
    parser.add_argument(
        "--keep-state", action="store_true", help="keep the state folder (runs' logs, journals, reports) at the end"
    )
    args = parser.parse_args()
    compileall.compile_dir(str(REPO / "plugins"), quiet=1)  # see ansible_env
    # SIGTERM ends the bench as Ctrl-C does, through the ``finally`` below that stops the lab and removes it.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    lab = Lab(args.latency)
    cores = os.cpu_count() or 1
    print(f"latency model: {args.latency}")
    print(
        f"limit toward vCenter (ours: failover_max_parallel and failover_vcenter_max_parallel; lower bound: "
        f"its pool): {args.max_parallel}; {cores} cores; {load()}"
    )
    figures: dict[str, Figure] = {}
    try:
        if not args.skip_single:
            figures["10"] = compare(lab, "g10", 1, 10, args.max_parallel, args.repeat)
            figures["idle"] = compare(lab, "idle", 1, args.vms, args.max_parallel, args.repeat)
        if not args.skip_load and not args.skip_single:
            with background_load(args.load):
                print(f"  background load: {args.load} busy process(es) on {cores} cores")
                figures["load"] = compare(lab, "load", 1, args.vms, args.max_parallel, args.repeat)
        if not args.skip_regional:
            figures["regional"] = compare(lab, "reg", args.tenants, args.tenant_vms, args.max_parallel)
        naive_figure = None
        if not args.skip_naive:
            site = lab.site("naive", 1, args.naive_vms or args.vms)
            seconds, code = naive(lab, site)
            naive_figure = (seconds, site.vms, site.verify(naive=True), code)
            print(f"  naive: {site.vms} VMs in {seconds:.1f} s ({naive_figure[2]}; rc {code})")
        report(figures, naive_figure, args)
        return 0 if all(f.outcome == "ok" for f in figures.values()) else 1
    finally:
        lab.stop(keep_state=args.keep_state)


def report(figures: dict[str, Figure], naive_figure: tuple[float, int, str, int] | None, args: Any) -> None:
    print()
    runs = f"medians of {args.repeat} runs, " if args.repeat > 1 else ""
    for key, what, target in (
        ("idle", "otherwise idle", 1.25),
        ("load", f"{args.load} busy process(es)", 1.25),
        ("regional", f"regional disaster, {args.tenants} tenants at once", 1.3),
    ):
        f = figures.get(key)
        if f is None:
            continue
        how = "" if key == "regional" else runs
        print(
            f"{f.vms} VMs, {what} ({how}{f.ours:.1f} s vs {f.lower:.1f} s): ours / lower bound = {f.ratio:.2f}"
            f"  (target <= {target}: {verdict(f.ratio, target)})"
        )
    idle = figures.get("idle")
    if naive_figure is not None and idle is not None:
        seconds, count, _outcome, _code = naive_figure
        scaled = seconds * idle.vms / count
        note = "" if count == idle.vms else f" (naive measured on {count} VMs, scaled x{idle.vms / count:.1f})"
        ratio = scaled / idle.ours
        print(f"naive / ours = {ratio:.1f}  (target >= 10: {verdict(ratio, 10, True)}){note}")
    rows = [figures[k] for k in ("10", "idle", "regional") if k in figures]
    if len(rows) < 2:
        return
    print()
    print("growth (seconds per VM must fall):")
    print(f"  {'VMs':>6} {'ours s':>8} {'lower s':>8} {'ratio':>6} {'ours s/VM':>10} {'lower s/VM':>11}")
    for f in rows:
        per_vm = f"{f.ours / f.vms:>10.3f} {f.lower / f.vms:>11.3f}"
        print(f"  {f.vms:>6} {f.ours:>8.1f} {f.lower:>8.1f} {f.ratio:>6.2f} {per_vm}")
    per_vm_ours = [f.ours / f.vms for f in rows]
    falling = all(b < a for a, b in itertools.pairwise(per_vm_ours))
    print(f"  ours per VM {'falls' if falling else 'does NOT fall'} from {rows[0].vms} to {rows[-1].vms} VMs")


if __name__ == "__main__":
    sys.exit(main())
