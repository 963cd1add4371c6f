"""The lab's layer-2 network: a switch namespace and one namespace per nested target.

    switch namespace "<prefix>" (default tenantry-lab)
      bridge lab-mgmt   (provider management network; dnsmasq answers here)  <- mgmt port of each target
      bridge lab-bridge (tenant VLAN ports, ARP-locked by nftables)           <- tenant port of each target
    target namespace "<prefix>-t-<target>"
      eth0: the target's management MAC (gets its IP from the DHCP reservation)
      eth1: the target's tenant MAC and tenant IP

Each target namespace stands in for a nested ESXi's two vNICs, so the lab applies the real ARP
lock (``tenantry.msp.bridge_arp_lock`` in the switch namespace) and serves the real DHCP
reservations (dnsmasq, configured by the ``dhcp_reservations`` role) to the real static MACs.
Every call is idempotent and reports whether it changed anything.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

from tenantry.lab.errors import LabError

DEFAULT_PREFIX = "tenantry-lab"
TENANT_BRIDGE = "lab-bridge"
MGMT_BRIDGE = "lab-mgmt"

_UDHCPC_SCRIPT = """#!/bin/sh
[ "$1" = bound ] && echo "$ip" > "$OUT"
exit 0
"""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and proc.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def _namespaces() -> set[str]:
    out = _ip("netns", "list").stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _has_link(netns: str, name: str) -> bool:
    return _ip("-n", netns, "link", "show", name, check=False).returncode == 0


class LabNet:
    """The lab network named by ``prefix``; ``state_dir`` keeps dnsmasq's pid, log and leases."""

    def __init__(self, state_dir: Path, prefix: str = DEFAULT_PREFIX) -> None:
        self.state_dir = state_dir
        self.switch_ns = prefix

    def target_ns(self, target: str) -> str:
        return f"{self.switch_ns}-t-{target}"

    @staticmethod
    def _mgmt_port(target: str) -> str:
        """The switch-side name of a target's management port (interface names stop at 15 characters)."""
        return "vm-" + hashlib.sha256(target.encode()).hexdigest()[:8]

    def switch_up(self, mgmt_gateway: str) -> bool:
        """The switch namespace with both bridges; ``mgmt_gateway`` (CIDR) is the DHCP server's address."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # Ownership: `down` removes only a network whose state dir says it was created from there.
        (self.state_dir / "switch").write_text(self.switch_ns + "\n")
        changed = False
        if self.switch_ns not in _namespaces():
            _ip("netns", "add", self.switch_ns)
            _ip("-n", self.switch_ns, "link", "set", "lo", "up")
            changed = True
        for bridge in (MGMT_BRIDGE, TENANT_BRIDGE):
            if not _has_link(self.switch_ns, bridge):
                _ip("-n", self.switch_ns, "link", "add", bridge, "type", "bridge")
                _ip("-n", self.switch_ns, "link", "set", bridge, "up")
                changed = True
        if mgmt_gateway not in _ip("-n", self.switch_ns, "-o", "addr", "show", "dev", MGMT_BRIDGE).stdout:
            _ip("-n", self.switch_ns, "addr", "replace", mgmt_gateway, "dev", MGMT_BRIDGE)
            changed = True
        return changed

    def plug(
        self, target: str, port: str, mgmt_mac: str, tenant_mac: str, tenant_ip: str, mgmt_port: str | None = None
    ) -> bool:
        """A target namespace whose eth0/eth1 carry the target's MACs, wired to the switch's bridges.

        ``mgmt_port`` names the management port on the switch (the tenant file's, so that the lock finds it).
        """
        if self.switch_ns not in _namespaces():
            raise LabError(f"the lab switch {self.switch_ns} is not up: run `python -m tenantry.lab net-up` first")
        ns = self.target_ns(target)
        changed = False
        if ns not in _namespaces():
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            changed = True
        for switch_port, bridge, ifname, mac, address in (
            (mgmt_port or self._mgmt_port(target), MGMT_BRIDGE, "eth0", mgmt_mac, None),
            (port, TENANT_BRIDGE, "eth1", tenant_mac, tenant_ip),
        ):
            if not _has_link(self.switch_ns, switch_port):
                # A peer left from a deleted switch namespace goes away asynchronously: remove it now.
                _ip("-n", ns, "link", "del", ifname, check=False)
                _ip(
                    "-n",
                    self.switch_ns,
                    "link",
                    "add",
                    switch_port,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    ifname,
                    "netns",
                    ns,
                )
                _ip("-n", self.switch_ns, "link", "set", switch_port, "master", bridge, "up")
                _ip("-n", ns, "link", "set", ifname, "address", mac, "up")
                if address:
                    _ip("-n", ns, "addr", "add", address, "dev", ifname)
                changed = True
        return changed

    def dhcp_up(self, conf: Path) -> bool:
        """dnsmasq in the switch namespace with ``conf`` (restarted when the file changed since it started)."""
        pid_file = self.state_dir / "dnsmasq.pid"
        stamp = self.state_dir / "dnsmasq.conf.sha256"
        digest = hashlib.sha256(conf.read_bytes()).hexdigest()
        pid = _alive(pid_file)
        if pid and stamp.exists() and stamp.read_text() == digest and self._in_switch(pid):
            return False
        if pid:
            _kill(pid)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = self.state_dir / "dnsmasq.log"
        argv = ["ip", "netns", "exec", self.switch_ns, "dnsmasq", f"--conf-file={conf}", f"--pid-file={pid_file}",
                f"--log-facility={log}", "--log-dhcp"]  # fmt: skip
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        if proc.returncode != 0:
            raise LabError(f"dnsmasq did not start: {proc.stderr.strip()}")
        stamp.write_text(digest)
        return True

    def _in_switch(self, pid: int) -> bool:
        """Whether process ``pid`` runs in the current switch namespace (it may have been re-created)."""
        try:
            return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{self.switch_ns}").st_ino
        except OSError:
            return False

    def lease(self, target: str, timeout: int = 3) -> str | None:
        """Ask for a lease on the target's management NIC; the address bound, or None when refused."""
        script = self.state_dir / "udhcpc.sh"
        if not script.exists():
            script.write_text(_UDHCPC_SCRIPT)
            script.chmod(0o755)
        out = self.state_dir / f"lease-{target}"
        out.unlink(missing_ok=True)
        argv = ["ip", "netns", "exec", self.target_ns(target), "env", f"OUT={out}", "busybox", "udhcpc", "-i", "eth0",
                "-f", "-q", "-n", "-t", str(timeout), "-T", "1", "-s", str(script)]  # fmt: skip
        subprocess.run(argv, capture_output=True, timeout=timeout * 3 + 10)
        return out.read_text().strip() if out.exists() else None

    def down(self) -> None:
        """Stop dnsmasq and delete every lab namespace (their veths and bridges go with them)."""
        pid = _alive(self.state_dir / "dnsmasq.pid")
        if pid:
            _kill(pid)
        owner = self.state_dir / "switch"
        if not owner.exists() or owner.read_text().strip() != self.switch_ns:
            return  # not created from this state dir: somebody else's lab
        for ns in _namespaces():
            if ns == self.switch_ns or ns.startswith(self.switch_ns + "-t-"):
                _ip("netns", "del", ns, check=False)
        for name in ("dnsmasq.pid", "dnsmasq.conf.sha256", "switch"):
            (self.state_dir / name).unlink(missing_ok=True)


def _alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
