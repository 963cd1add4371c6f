"""``python -m tenantry.lab``: build, start, inspect and stop the lab's simulators.

State lives in ``<repo>/.lab/state`` (``--state-dir`` overrides): ``vcenter.json``
and ``esx/<name>.json`` hold each endpoint, password included, with mode 0600.
Nothing here prints a password.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import re
import shutil
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from tenantry.common import pki
from tenantry.lab import network, relay
from tenantry.lab.build import build, repo_root
from tenantry.lab.errors import LabError
from tenantry.lab.simulator import Endpoint, Mode, Simulator, is_simulator, terminate

DEFAULT_VCENTER_PORT = 18443
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


def _write(path: Path, endpoint: Endpoint) -> None:
    pki.write_private(path, (json.dumps(endpoint.to_json(), indent=2) + "\n").encode())


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
        terminate(endpoint.pid)
    path.unlink(missing_ok=True)


def _describe(label: str, endpoint: Endpoint) -> str:
    state = "running" if healthy(endpoint) else "NOT RUNNING"
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
        endpoint, started = _start(
            path, "esx", args.state_dir, f"esx-{args.name}", args.port, args.latency, vms=args.vms
        )
    print(("started " if started else "already running ") + _describe(f"esx/{args.name}", endpoint))
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


def cmd_down(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir
    with _locked(state_dir):
        relay.down(state_dir / "run")
        for path in sorted((state_dir / "esx").glob("*.json")):
            _stop(path)
        _stop(_vcenter_state(state_dir))
        network.LabNet(state_dir / "net").down()
        for leftover in ("run", "nfs", "esx", "net"):
            shutil.rmtree(state_dir / leftover, ignore_errors=True)
    return 0


def _changed(changed: bool, what: str) -> int:
    print(("changed " if changed else "unchanged ") + what)
    return 0


def cmd_net_up(args: argparse.Namespace) -> int:
    net = network.LabNet(args.state_dir / "net")
    return _changed(net.switch_up(args.gateway), f"switch {net.switch_ns}")


def cmd_net_plug(args: argparse.Namespace) -> int:
    changed = network.LabNet(args.state_dir / "net").plug(
        args.target, args.port, args.mgmt_mac, args.tenant_mac, args.tenant_ip
    )
    return _changed(changed, f"target {args.target} on port {args.port}")


def cmd_dhcp_up(args: argparse.Namespace) -> int:
    return _changed(network.LabNet(args.state_dir / "net").dhcp_up(args.conf.resolve()), f"dnsmasq with {args.conf}")


def cmd_dhcp_lease(args: argparse.Namespace) -> int:
    (args.state_dir / "net").mkdir(parents=True, exist_ok=True)
    address = network.LabNet(args.state_dir / "net").lease(args.target)
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
            print(_describe(f"esx/{path.stem}", endpoint))
            found = True
    if not found:
        print(f"no simulators recorded in {state_dir}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tenantry.lab", description="The tenantry vCenter simulator lab.")
    parser.add_argument("--state-dir", type=Path, help="state directory (default: <repo>/.lab/state)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="build .lab/bin/tenantry-vcsim if its sources changed")
    p.add_argument("--force", action="store_true", help="rebuild even when up to date")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("up", help="start the provider vCenter (idempotent)")
    p.add_argument("--port", type=int, default=DEFAULT_VCENTER_PORT, help="listen port (0 = any free port)")
    p.add_argument("--latency", help='per-method delays, e.g. "RegisterVM=120ms,*=5ms"')
    p.add_argument("--hosts", type=int, help="hosts in cluster 'production' (default 3)")
    p.add_argument("--vms", type=int, help="powered-on VMs in folder 'production' (default 0)")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("esx-up", help="start one standalone ESXi for a nested replication target (idempotent)")
    p.add_argument("name")
    p.add_argument("--port", type=int, default=0, help="listen port (default: any free port)")
    p.add_argument("--latency", help="per-method delays")
    p.add_argument("--vms", type=int, help="VMs to create (default 0)")
    p.set_defaults(func=cmd_esx_up)

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

    p = sub.add_parser("net-up", help="the lab switch: namespace with a management and a tenant bridge")
    p.add_argument("--gateway", default="10.0.16.1/20", help="the DHCP server's address on the management bridge")
    p.set_defaults(func=cmd_net_up)

    p = sub.add_parser("net-plug", help="a namespace standing in for a nested target's two vNICs")
    p.add_argument("target")
    p.add_argument("--port", required=True, help="its tenant port on lab-bridge (the tenant file's switch port)")
    p.add_argument("--mgmt-mac", required=True)
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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.state_dir is None:
            args.state_dir = repo_root() / ".lab" / "state"
        args.state_dir = args.state_dir.resolve()
        code: int = args.func(args)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code
