"""The dhcp_reservations role for real: it configures dnsmasq / Kea, the server runs in a namespace on a
lab bridge, and DHCP clients prove that each reserved MAC gets exactly its IP and a stranger none.

The role runs with ``ansible-playbook`` *inside* the server's namespace (``-c local``), so the
server's own check (``dnsmasq --test``, ``kea-dhcp4 -t``, which also looks for the interface) sees
the namespace's ``eth0``.  Package installation and the systemd service are switched off
(``dhcp_reservations_install`` / ``_manage_service``): there is no systemd here; the test starts the
server in the foreground with the file the role wrote.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netlab import NetLab, why_not_available
from support import REPO, PlaybookRun, ansible_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(bool(reason := why_not_available("busybox")), reason=reason or ""),
]

SUBNET = "10.0.16.0/20"
RESERVATIONS = [
    {"hostname": "acme-target-01", "mac": "00:50:56:00:65:02", "ip": "10.0.16.12"},
    {"hostname": "globex-target-01", "mac": "0050.5600.6602", "ip": "10.0.17.12"},
]
CLIENTS = {  # namespace: MAC of its interface
    "c1": "00:50:56:00:65:02",
    "c2": "00:50:56:00:66:02",
    "stranger": "00:50:56:00:99:99",
}
BOUND_SCRIPT = """#!/bin/sh
[ "$1" = bound ] && printf '%s %s %s %s %s\\n' "$ip" "$subnet" "$router" "$dns" "$hostname" > "$OUT"
exit 0
"""


class DhcpLab:
    def __init__(self, netlab: NetLab, work: Path) -> None:
        self.netlab = netlab
        self.work = work
        sw = netlab.netns("dsw")
        netlab.bridge(sw)
        self.server = netlab.netns("dsrv")
        netlab.plug(sw, "br0", "p-srv", self.server, mac="02:00:00:00:10:02", address="10.0.16.2/20")
        self.clients = {name: netlab.netns(name) for name in CLIENTS}
        for name, mac in CLIENTS.items():
            netlab.plug(sw, "br0", "p-" + name, self.clients[name], mac=mac)
        self.script = work / "bound.sh"
        self.script.write_text(BOUND_SCRIPT)
        self.script.chmod(0o755)

    def role(self, backend: str, **extra: Any) -> PlaybookRun:
        """Run the role in the server's namespace, the way it runs on a DHCP server host."""
        role_vars = {
            "dhcp_reservations_backend": backend,
            "dhcp_reservations_list": RESERVATIONS,
            "dhcp_reservations_interface": "eth0",
            "dhcp_reservations_subnet": SUBNET,
            "dhcp_reservations_gateway": "10.0.16.1",
            "dhcp_reservations_dns_servers": ["10.0.16.2"],
            "dhcp_reservations_lease_time": 600,
            "dhcp_reservations_config_path": str(self.work / f"{backend}.conf"),
            "dhcp_reservations_lease_file": str(self.work / f"{backend}.leases"),
            "dhcp_reservations_install": False,
            "dhcp_reservations_manage_service": False,
            **extra,
        }
        play = [{"name": "dhcp", "hosts": "localhost", "gather_facts": False,
                 "roles": [{"role": "tenantry.msp.dhcp_reservations", "vars": role_vars}]}]  # fmt: skip
        path = self.work / f"play-{len(list(self.work.glob('play-*.yml')))}.yml"
        path.write_text(json.dumps(play))
        argv = [str(Path(sys.executable).parent / "ansible-playbook"), str(path), "-i", "localhost,", "-c", "local",
                "-e", "ansible_python_interpreter=" + sys.executable]  # fmt: skip
        proc = subprocess.run(
            ["ip", "netns", "exec", self.server, *argv], capture_output=True, text=True, env=ansible_env(), cwd=REPO
        )
        try:
            report = json.loads(proc.stdout)
        except json.JSONDecodeError:
            report = {}
        results = [r for play in report.get("plays", []) for t in play["tasks"] for r in t["hosts"].values()]
        return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, results)

    def serve(self, backend: str) -> subprocess.Popen[bytes]:
        conf = self.work / f"{backend}.conf"
        log = self.work / f"{backend}.log"
        if backend == "dnsmasq":
            argv = ["dnsmasq", "--keep-in-foreground", f"--conf-file={conf}", f"--pid-file={self.work}/dnsmasq.pid",
                    f"--log-facility={log}.dhcp", "--log-dhcp"]  # fmt: skip
            ready, watched = "DHCP, sockets bound", Path(f"{log}.dhcp")
            env = None
        else:
            argv = ["kea-dhcp4", "-c", str(conf)]
            ready, watched = "DHCP4_STARTED", log
            env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "KEA_PIDFILE_DIR": str(self.work),
                   "KEA_LOCKFILE_DIR": str(self.work)}  # fmt: skip
        proc = self.netlab.start(self.server, argv, log, env=env)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if watched.exists() and ready in watched.read_text(errors="replace"):
                return proc
            assert proc.poll() is None, log.read_text(errors="replace")
            time.sleep(0.05)
        raise AssertionError(f"{backend} did not start: " + log.read_text(errors="replace"))

    def leases(self, backend: str) -> dict[str, str | None]:
        """Run a DHCP client in every client namespace at once; what each was bound to (None: no lease)."""
        runs = {}
        for name, netns in self.clients.items():
            out = self.work / f"{backend}-{name}.bound"
            out.unlink(missing_ok=True)
            argv = ["ip", "netns", "exec", netns, "env", f"OUT={out}", "busybox", "udhcpc", "-i", "eth0", "-f", "-q",
                    "-n", "-t", "3", "-T", "1", "-s", str(self.script)]  # fmt: skip
            runs[name] = (subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out)
        found: dict[str, str | None] = {}
        for name, (proc, out) in runs.items():
            proc.wait(timeout=20)
            found[name] = out.read_text().strip() if out.exists() else None
        return found


@pytest.fixture(scope="module")
def dhcp(netlab: NetLab, tmp_path_factory: pytest.TempPathFactory) -> DhcpLab:
    return DhcpLab(netlab, tmp_path_factory.mktemp("dhcp"))


@pytest.fixture
def stop_servers(dhcp: DhcpLab) -> Iterator[None]:
    yield
    for proc in dhcp.netlab.processes:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.mark.parametrize("backend", ["dnsmasq", "kea"])
def test_reserved_macs_get_exactly_their_ip(dhcp: DhcpLab, backend: str, stop_servers: None) -> None:
    if backend == "kea" and subprocess.run(["which", "kea-dhcp4"], capture_output=True).returncode:
        pytest.skip("kea-dhcp4 is not installed (lab/apt-packages.txt)")
    first = dhcp.role(backend)
    assert first.rc == 0, first.stdout[-4000:] + first.stderr[-2000:]
    written = next(r for r in first.results if r.get("action") == "ansible.builtin.template")
    assert written["changed"] is True
    second = dhcp.role(backend)
    assert second.rc == 0
    assert next(r for r in second.results if r.get("action") == "ansible.builtin.template")["changed"] is False
    assert (dhcp.work / f"{backend}.conf").read_text().startswith("#\n# Ansible managed")

    dhcp.serve(backend)
    leases = dhcp.leases(backend)
    assert leases["c1"] == "10.0.16.12 255.255.240.0 10.0.16.1 10.0.16.2 acme-target-01"
    assert leases["c2"] == "10.0.17.12 255.255.240.0 10.0.16.1 10.0.16.2 globex-target-01"
    assert leases["stranger"] is None  # reservation-only: an unknown MAC gets nothing


def test_bad_reservations_fail_before_the_file_is_written(dhcp: DhcpLab) -> None:
    wrong = [*RESERVATIONS, {"hostname": "initech-target-01", "mac": "00:50:56:00:67:02", "ip": "10.0.1.12"}]
    run = dhcp.role(
        "dnsmasq", dhcp_reservations_list=wrong, dhcp_reservations_config_path=str(dhcp.work / "never.conf")
    )
    assert run.rc != 0
    failed = next(r for r in run.results if r.get("failed"))
    assert "reservation initech-target-01: ip 10.0.1.12 is outside the subnet 10.0.16.0/20" in failed["msg"]
    assert not (dhcp.work / "never.conf").exists()
