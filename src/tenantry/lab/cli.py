"""``python -m tenantry.lab``: build, start, inspect and stop the lab's simulators.

State lives in the lab instance's state directory (``<repo>/.lab/state`` for the default instance,
``<repo>/.lab/instances/<name>/state`` for ``--instance NAME`` or ``$TENANTRY_LAB_INSTANCE``;
``--state-dir`` overrides): ``vcenter.json`` and ``esx/<name>.json`` hold each endpoint, password
included, with mode 0600.  Nothing here prints a password.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import re
import secrets
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from tenantry.common import pki
from tenantry.lab import network, relay, target
from tenantry.lab.build import build, repo_root
from tenantry.lab.errors import LabError
from tenantry.lab.instance import DEFAULT_VCENTER_PORT, current
from tenantry.lab.simulator import DEFAULT_USERNAME, Endpoint, Mode, Simulator, is_simulator, terminate
from tenantry.lab.tls import ensure_tls

__all__ = ["DEFAULT_VCENTER_PORT", "main"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def _vcenter_state(state_dir: Path) -> Path:
    return state_dir / "vcenter.json"


def _esx_state(state_dir: Path, name: str) -> Path:
    if not _NAME.match(name):
        raise LabError(f"invalid ESX name {name!r}: use letters, digits, '.', '_' or '-'")
    return state_dir / "esx" / f"{name}.json"


def _read(path: Path) -> Endpoint | None:
    try:
        return Endpoint.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError) as exc:
        raise LabError(f"{path} is damaged ({exc}); remove it or run 'down'") from exc


def _write(path: Path, endpoint: Endpoint, **extra: object) -> None:
    pki.write_private(path, (json.dumps({**endpoint.to_json(), **extra}, indent=2) + "\n").encode())


def healthy(endpoint: Endpoint, timeout: float = 3.0) -> bool:
    """The process is ours and answers HTTPS, verified with the lab CA."""
    if not is_simulator(endpoint.pid):
        return False
    url = f"https://{endpoint.hostname}:{endpoint.port}/sdk/vimServiceVersions.xml"
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=endpoint.ssl_context()) as response:
            return bool(response.status == 200)
    except (OSError, ssl.SSLError, urllib.error.URLError):
        return False


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """Serialise lab commands that change state."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _start(
    path: Path,
    mode: Mode,
    state_dir: Path,
    name: str,
    port: int,
    latency: str | None,
    *,
    hosts: int | None = None,
    vms: int | None = None,
) -> tuple[Endpoint, bool]:
    """Start unless the recorded simulator is healthy; returns (endpoint, started)."""
    current = _read(path)
    if current is not None:
        if healthy(current):
            return current, False
        terminate(current.pid)  # recorded but broken: replace it
    simulator = Simulator(build())
    endpoint = simulator.start(mode, state_dir, name, port=port, latency=latency, hosts=hosts, vms=vms, detach=True)
    _write(path, endpoint)
    return endpoint, True


def _stop(path: Path) -> None:
    endpoint = _read(path)
    if endpoint is not None:
        extra = target.read_extra(path)
        if extra.get("boot"):
            target.kill(endpoint.pid, target.booting_or_running)
            target.kill(int(extra.get("relay_pid", 0)), target.relay_alive)
        terminate(endpoint.pid)
    path.unlink(missing_ok=True)


def _start_booting(args: argparse.Namespace, path: Path) -> tuple[Endpoint, bool]:
    """The target's API behind its DHCP lease (tenantry.lab.target); unchanged while both processes live."""
    current_endpoint = _read(path)
    if current_endpoint is not None:
        extra = target.read_extra(path)
        if (
            extra.get("boot")
            and extra.get("mgmt_ip") == args.mgmt_ip
            and target.booting_or_running(current_endpoint.pid)
            and target.relay_alive(int(extra.get("relay_pid", 0)))
        ):
            return current_endpoint, False
        _stop(path)
    net = network.LabNet(args.state_dir / "net", args.instance.prefix)
    password = secrets.token_urlsafe(24)
    tls = ensure_tls(args.state_dir)
    relay_pid, port = target.start_relay(args.state_dir, args.name, net.switch_ns, args.mgmt_ip)
    pid = target.start_boot(args.state_dir, args.name, net.target_ns(args.name), password, tls, args.latency, args.vms)
    endpoint = Endpoint("127.0.0.1", port, DEFAULT_USERNAME, password, tls.ca_file, pid)
    _write(path, endpoint, boot=True, relay_pid=relay_pid, mgmt_ip=args.mgmt_ip, netns=net.target_ns(args.name))
    return endpoint, True


def _describe(label: str, endpoint: Endpoint, booting: bool = False) -> str:
    state = "running" if healthy(endpoint) else ("booting (no DHCP lease yet)" if booting else "NOT RUNNING")
    return f"{label:<16} {endpoint.url}  user={endpoint.username}  pid={endpoint.pid}  {state}  ca={endpoint.ca_file}"


def cmd_build(args: argparse.Namespace) -> int:
    print(build(force=args.force))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    with _locked(args.state_dir):
        endpoint, started = _start(
            _vcenter_state(args.state_dir),
            "vcenter",
            args.state_dir,
            "vcenter",
            args.port,
            args.latency,
            hosts=args.hosts,
            vms=args.vms,
        )
    print(("started " if started else "already running ") + _describe("vcenter", endpoint))
    return 0


def cmd_esx_up(args: argparse.Namespace) -> int:
    path = _esx_state(args.state_dir, args.name)
    with _locked(args.state_dir):
        if args.mgmt_ip:
            endpoint, started = _start_booting(args, path)
        else:
            endpoint, started = _start(
                path, "esx", args.state_dir, f"esx-{args.name}", args.port, args.latency, vms=args.vms
            )
    booting = bool(args.mgmt_ip) and not is_simulator(endpoint.pid)
    print(("started " if started else "already running ") + _describe(f"esx/{args.name}", endpoint, booting))
    return 0


def cmd_esx_boot(args: argparse.Namespace) -> int:
    target.boot(args.state_dir, args.name, args.tls_cert, args.tls_key, args.latency, args.vms)
    return 0  # not reached: boot() becomes the simulator


def cmd_mgmt_relay_serve(args: argparse.Namespace) -> int:
    target.serve_mgmt(args.netns, args.to, args.ready_file)
    return 0


def cmd_esx_down(args: argparse.Namespace) -> int:
    with _locked(args.state_dir):
        _stop(_esx_state(args.state_dir, args.name))
    return 0


def _recorded_ports(state_dir: Path) -> list[int]:
    endpoints = [_read(_vcenter_state(state_dir))] + [_read(p) for p in sorted((state_dir / "esx").glob("*.json"))]
    return [e.port for e in endpoints if e is not None]


def cmd_relay_up(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir
    with _locked(state_dir):
        ports = _recorded_ports(state_dir)
        if not ports:
            raise LabError("no simulator is recorded: run `python -m tenantry.lab up` first")
        changed = relay.up(state_dir / "run", state_dir / "logs", args.listen_host, ports, state_dir)
    return _changed(changed, f"relay on {args.listen_host} for ports {', '.join(map(str, sorted(ports)))}")


def cmd_relay_serve(args: argparse.Namespace) -> int:
    relay.serve(args.listen_host, args.port)
    return 0


def cmd_relay_down(args: argparse.Namespace) -> int:
    return _changed(relay.down(args.state_dir / "run"), "relay")


# What a lab run leaves that describes the simulators' inventory: gone with them.
_RUN_STATE = ("run", "nfs", "esx", "net", "exports", "credentials")


def cmd_down(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir
    with _locked(state_dir):
        relay.down(state_dir / "run")
        for path in sorted((state_dir / "esx").glob("*.json")):
            _stop(path)
        _stop(_vcenter_state(state_dir))
        network.LabNet(state_dir / "net", args.instance.prefix).down()
        busy = _unmount_under(state_dir / "exports")
        removed = [name for name in _RUN_STATE if not (name == "exports" and busy)]
        for leftover in removed:
            shutil.rmtree(state_dir / leftover, ignore_errors=True)
        archived = _archive_failover(state_dir)
    print(f"lab instance {args.instance.name}: stopped; removed {', '.join(removed)} from {state_dir}")
    if busy:
        print(
            f"kept {state_dir / 'exports'}: could not unmount {', '.join(busy)} (in use?); run `make lab-down` "
            "again once it is free"
        )
    kept = [name for name in ("tls", "logs", "secrets", "console", "previous") if (state_dir / name).exists()]
    print(f"kept in {state_dir}: {', '.join(kept) or 'nothing'} (the lab CA, logs, the tenants' account "
          "passwords and console logins, failover reports of earlier labs); `make clean` removes .lab")  # fmt: skip
    if archived:
        print(f"failover reports and journals of this lab moved to {archived} (the next lab's summary ignores them)")
    return 0


def _unmount_under(root: Path) -> list[str]:
    """Unmount the tenants' NFS filesystems (loop-mounted images, the nfs_export role) below root, deepest
    first, and detach their loop devices; returns the mount points still mounted (never rmtree into those)."""
    prefix = str(root.resolve())

    def mounted() -> list[str]:
        points = []
        with open("/proc/self/mountinfo", encoding="utf-8") as handle:
            for line in handle:
                point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
                if point == prefix or point.startswith(prefix + "/"):
                    points.append(point)
        return sorted(set(points), key=len, reverse=True)

    for point in mounted():
        subprocess.run(["umount", point], check=False, capture_output=True)
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        with contextlib.suppress(OSError):
            if backing.read_text().strip().startswith(prefix + "/"):
                subprocess.run(["losetup", "-d", f"/dev/{backing.parts[3]}"], check=False, capture_output=True)
    return mounted()


def _archive_failover(state_dir: Path) -> Path | None:
    """Move failover/ (reports, journals) to previous/<time>/ so that a new lab starts without them."""
    source = state_dir / "failover"
    if not source.exists():
        return None
    if not any(p.is_file() for p in source.rglob("*")):
        shutil.rmtree(source, ignore_errors=True)
        return None
    dest = state_dir / "previous" / time.strftime("%Y%m%dT%H%M%S")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(dest / "failover"))
    return dest / "failover"


def _changed(changed: bool, what: str) -> int:
    print(("changed " if changed else "unchanged ") + what)
    return 0


def cmd_net_up(args: argparse.Namespace) -> int:
    net = network.LabNet(args.state_dir / "net", args.instance.prefix)
    return _changed(net.switch_up(args.gateway), f"switch {net.switch_ns}")


def cmd_net_plug(args: argparse.Namespace) -> int:
    changed = network.LabNet(args.state_dir / "net", args.instance.prefix).plug(
        args.target, args.port, args.mgmt_mac, args.tenant_mac, args.tenant_ip, mgmt_port=args.mgmt_port
    )
    return _changed(changed, f"target {args.target} on port {args.port}")


def cmd_dhcp_up(args: argparse.Namespace) -> int:
    net = network.LabNet(args.state_dir / "net", args.instance.prefix)
    return _changed(net.dhcp_up(args.conf.resolve()), f"dnsmasq with {args.conf}")


def cmd_dhcp_lease(args: argparse.Namespace) -> int:
    (args.state_dir / "net").mkdir(parents=True, exist_ok=True)
    address = network.LabNet(args.state_dir / "net", args.instance.prefix).lease(args.target)
    print(address or "no lease")
    return 0 if address else 3


def cmd_esx_seed(args: argparse.Namespace) -> int:
    from tenantry.lab.seed import seed

    endpoint = _read(_esx_state(args.state_dir, args.name))
    if endpoint is None:
        raise LabError(f"no ESX instance {args.name}: run `python -m tenantry.lab esx-up {args.name}` first")
    created = seed(endpoint, args.datastore, args.vm, args.network)
    return _changed(bool(created), f"VMs on {args.name}: created {', '.join(created) or 'none'}")


def cmd_prod_portgroups(args: argparse.Namespace) -> int:
    from tenantry.lab.seed import production_portgroups

    endpoint = _read(_vcenter_state(args.state_dir))
    if endpoint is None:
        raise LabError("no provider vCenter: run `python -m tenantry.lab up` first")
    wanted = []
    for item in args.portgroup:
        name, sep, vlan = item.rpartition(":")
        if not sep or not vlan.isdigit() or not name:
            raise LabError(f"--portgroup {item!r}: expected NAME:VLAN")
        wanted.append((name, int(vlan)))
    added = production_portgroups(endpoint, wanted)
    return _changed(bool(added), f"production portgroups: added {', '.join(added) or 'none'}")


def cmd_directory_user(args: argparse.Namespace) -> int:
    """Stand-in for the MSP's directory (AD or vCenter SSO): an account the provider vCenter knows, with a random
    password kept under secrets/ (0600, never printed), so that the failover's account check finds it."""
    from tenantry.lab.simulator import add_directory_user, directory_file

    user: str = args.user
    if not re.fullmatch(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+", user):
        raise LabError(f"--user {user!r}: expected an account such as acme-ops@vsphere.local")
    secret = args.state_dir / "secrets" / f"directory-{user}"
    secret.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not secret.exists():
        secret.touch(mode=0o600)
        secret.write_text(secrets.token_urlsafe(24))
    password = secret.read_text().strip()
    try:
        known = json.loads(directory_file(args.state_dir, "vcenter").read_text())
    except (OSError, ValueError):
        known = {}
    changed = known.get(user) != password
    if changed:
        add_directory_user(args.state_dir, "vcenter", user, password)
    return _changed(changed, f"directory account {user} (password in {secret})")


def cmd_status(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir
    found = False
    vcenter = _read(_vcenter_state(state_dir))
    if vcenter is not None:
        print(_describe("vcenter", vcenter))
        found = True
    for path in sorted((state_dir / "esx").glob("*.json")):
        endpoint = _read(path)
        if endpoint is not None:
            booting = bool(target.read_extra(path).get("boot")) and target.booting_or_running(endpoint.pid)
            print(_describe(f"esx/{path.stem}", endpoint, booting and not is_simulator(endpoint.pid)))
            found = True
    if not found:
        print(f"no simulators recorded in {state_dir}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tenantry.lab", description="The tenantry vCenter simulator lab.")
    parser.add_argument("--instance", help="lab instance name (default: $TENANTRY_LAB_INSTANCE, else 'default')")
    parser.add_argument("--state-dir", type=Path, help="state directory (default: the instance's, <repo>/.lab/state)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="build .lab/bin/tenantry-vcsim if its sources changed")
    p.add_argument("--force", action="store_true", help="rebuild even when up to date")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("up", help="start the provider vCenter (idempotent)")
    p.add_argument("--port", type=int, help="listen port (0 = any free port; default 18443, any for other instances)")
    p.add_argument("--latency", help='per-method delays, e.g. "RegisterVM=120ms,*=5ms"')
    p.add_argument("--hosts", type=int, help="hosts in cluster 'production' (default 3)")
    p.add_argument("--vms", type=int, help="powered-on VMs in folder 'production' (default 0)")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("esx-up", help="start one standalone ESXi for a nested replication target (idempotent)")
    p.add_argument("name")
    p.add_argument("--port", type=int, default=0, help="listen port (default: any free port)")
    p.add_argument("--latency", help="per-method delays")
    p.add_argument("--vms", type=int, help="VMs to create (default 0)")
    p.add_argument(
        "--mgmt-ip",
        help="the target's reserved management address: its API then listens there only, inside the target's "
        "namespace (net-plug first), once eth0 leased it by DHCP; reached through a relay on 127.0.0.1",
    )
    p.set_defaults(func=cmd_esx_up)

    p = sub.add_parser("esx-boot", help=argparse.SUPPRESS)
    p.add_argument("name")
    p.add_argument("--tls-cert", required=True)
    p.add_argument("--tls-key", required=True)
    p.add_argument("--latency")
    p.add_argument("--vms", type=int)
    p.set_defaults(func=cmd_esx_boot)

    p = sub.add_parser("mgmt-relay-serve", help=argparse.SUPPRESS)
    p.add_argument("--netns", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--ready-file", type=Path, required=True)
    p.set_defaults(func=cmd_mgmt_relay_serve)

    p = sub.add_parser("instance", help="the instance's names (state dir, namespaces, podman network, ...) as JSON")
    p.set_defaults(func=cmd_instance)

    p = sub.add_parser("esx-down", help="stop one ESXi started by esx-up")
    p.add_argument("name")
    p.set_defaults(func=cmd_esx_down)

    p = sub.add_parser("esx-seed", help="stand-in for replication: VMs on a target's tenant datastore")
    p.add_argument("name")
    p.add_argument("--datastore", required=True)
    p.add_argument("--vm", action="append", required=True, help="VM name (repeat)")
    p.add_argument("--network", default="tenant", help="portgroup of their NIC (default tenant)")
    p.set_defaults(func=cmd_esx_seed)

    p = sub.add_parser("prod-portgroups", help="stand-in for the tenants' network setup: portgroups in production")
    p.add_argument("--portgroup", action="append", required=True, help="NAME:VLAN (repeat)")
    p.set_defaults(func=cmd_prod_portgroups)

    p = sub.add_parser("directory-user", help="stand-in for the MSP's directory: an account the provider vCenter knows")
    p.add_argument("--user", required=True, help="the account, e.g. acme-ops@vsphere.local")
    p.set_defaults(func=cmd_directory_user)

    p = sub.add_parser("net-up", help="the lab switch: namespace with a management and a tenant bridge")
    p.add_argument("--gateway", default="10.0.16.1/20", help="the DHCP server's address on the management bridge")
    p.set_defaults(func=cmd_net_up)

    p = sub.add_parser("net-plug", help="a namespace standing in for a nested target's two vNICs")
    p.add_argument("target")
    p.add_argument("--port", required=True, help="its tenant port on lab-bridge (the tenant file's switch port)")
    p.add_argument("--mgmt-mac", required=True)
    p.add_argument("--mgmt-port", help="the management port's name on the switch (the tenant file's)")
    p.add_argument("--tenant-mac", required=True)
    p.add_argument("--tenant-ip", required=True, help="address/prefix on the tenant network")
    p.set_defaults(func=cmd_net_plug)

    p = sub.add_parser("dhcp-up", help="serve a dnsmasq configuration on the management bridge")
    p.add_argument("--conf", type=Path, required=True)
    p.set_defaults(func=cmd_dhcp_up)

    p = sub.add_parser("dhcp-lease", help="DHCP from a target's management NIC; prints the address bound")
    p.add_argument("target")
    p.set_defaults(func=cmd_dhcp_lease)

    p = sub.add_parser("relay-up", help="relay the simulators' ports from an address the containers reach (idempotent)")
    p.add_argument("--listen-host", required=True, help="e.g. the podman network's gateway address")
    p.set_defaults(func=cmd_relay_up)

    p = sub.add_parser("relay-serve", help=argparse.SUPPRESS)
    p.add_argument("--listen-host", required=True)
    p.add_argument("--port", type=int, action="append", required=True)
    p.set_defaults(func=cmd_relay_serve)

    p = sub.add_parser("relay-down", help="stop the relay")
    p.set_defaults(func=cmd_relay_down)

    p = sub.add_parser("down", help="stop every recorded simulator and remove their state (the CA is kept)")
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("status", help="list recorded simulators (no passwords)")
    p.set_defaults(func=cmd_status)
    return parser


def cmd_instance(args: argparse.Namespace) -> int:
    print(json.dumps(args.instance.as_dict(), indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.instance = current(repo_root(), args.instance)
        if args.state_dir is None:
            args.state_dir = args.instance.state_dir
        args.state_dir = args.state_dir.resolve()
        if getattr(args, "port", "") is None and args.func is cmd_up:
            args.port = args.instance.vcenter_port
        code: int = args.func(args)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code
