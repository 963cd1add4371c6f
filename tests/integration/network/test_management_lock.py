"""The management side locked too: tenant files -> tenants inventory -> the onboarding's ARP-lock play -> nftables.

Topology (namespaces tagged for this run, removed at the end even on failure)::

    ns sw:  bridge br-mgmt ─┬─ vm-a1 ── ns a1 eth0  acme-target-01's management MAC   (DHCP)
            (management)    ├─ vm-g1 ── ns g1 eth0  globex-target-01's management MAC (DHCP)
                            └─ up0   ── ns srv eth0 10.0.16.1/20: dnsmasq with the reservations, the gateway
            bridge br-ten  ─┬─ vt-a1 ── ns a1 eth1  acme's tenant MAC and IP
                            └─ vt-g1 ── ns g1 eth1  globex's tenant MAC and IP

The real ``playbooks/onboard_tenant.yml`` runs against a temporary inventory (the tenants plugin reading two
tenant files whose ``switch_ports`` name a tenant port and a management port per target, two switch hosts
for the two bridges, each with its own table), limited to its request and ARP-lock plays: the bindings come
from the allocation, through ``tenantry.msp.arp_bindings_of``, into ``tenantry.msp.switch_arp_lock``.

Then a tenant with root on its target (namespace a1) tries to take another tenant's management address on
the shared management network: the frames are dropped, counted, and never reach the gateway.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from netlab import NetLab, drain, nft_counters, nft_tables, receive, why_not_available
from support import REPO, PlaybookRun, ansible_env, run_playbook

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(bool(reason := why_not_available("nft", "dnsmasq", "busybox")), reason=reason or ""),
]

MGMT_TABLE, TENANT_TABLE = "t_mgmt_lock", "t_tenant_lock"
GATEWAY, GATEWAY_MAC = "10.0.16.1", "02:00:00:00:16:01"
BOUND_SCRIPT = """#!/bin/sh
[ "$1" = bound ] && echo "$ip" > "$OUT"
exit 0
"""


def tenant_file(name: str, tid: int, vlan: int, octet: int, short: str) -> dict[str, Any]:
    return {
        "name": name,
        "id": tid,
        "vlan": vlan,
        "network": {
            "cidr": f"10.{octet}.0.0/24",
            "gateway": f"10.{octet}.0.1",
            "pool": f"10.{octet}.0.100-10.{octet}.0.149",
        },
        "targets": {"count": 1},
        "nfs": {"server": "192.168.50.10", "path": f"/exports/tenants/{name}"},
        "production": {"account": f"{name}-ops@vsphere.local"},
        "routes": [{"network": "10.0.0.0/24", "gateway": GATEWAY, "interface": "management"}],
        "switch_ports": [
            {
                "target": 1,
                "switch": "ten-sw",
                "port": f"vt-{short}",
                "management": {"switch": "mgmt-sw", "port": f"vm-{short}"},
            }
        ],
    }


class Site:
    def __init__(self, netlab: NetLab, work: Path) -> None:
        self.netlab, self.work = netlab, work
        self.inventory = work / "inventory"
        (self.inventory / "tenants").mkdir(parents=True)
        (self.inventory / "tenants.tenantry.yaml").write_text(
            "plugin: tenantry.msp.tenants\ntenants_dir: tenants\nmanagement_pool: 10.0.16.0/20\n"
        )
        for name, args in {"acme": (101, 210, 210, "a1"), "globex": (102, 220, 220, "g1")}.items():
            (self.inventory / "tenants" / f"{name}.yml").write_text(yaml.safe_dump(tenant_file(name, *args)))
        self.sw = netlab.netns("msw")
        switch = {"ansible_connection": "local", "switch_arp_lock_backend": "linux_bridge",
                  "switch_arp_lock_netns": self.sw, "switch_arp_lock_install": False}  # fmt: skip
        hosts = {
            "all": {
                "children": {
                    "switches": {
                        "hosts": {
                            "mgmt-sw": {
                                **switch,
                                "switch_arp_lock_bridge": "br-mgmt",
                                "switch_arp_lock_table": MGMT_TABLE,
                            },
                            "ten-sw": {
                                **switch,
                                "switch_arp_lock_bridge": "br-ten",
                                "switch_arp_lock_table": TENANT_TABLE,
                            },
                        }
                    }
                }
            }
        }
        (self.inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
        self.targets = self.allocation()
        self.ns: dict[str, str] = {}
        netlab.bridge(self.sw, "br-mgmt")
        netlab.bridge(self.sw, "br-ten")
        for short, target in (("a1", "acme-target-01"), ("g1", "globex-target-01")):
            host = self.targets[target]
            ns = self.ns[short] = netlab.netns(short)
            netlab.plug(self.sw, "br-mgmt", f"vm-{short}", ns, mac=host["tenantry_target_mgmt_mac"])
            tenant_ip = host["tenantry_target_tenant_ip"] + "/24"
            netlab.plug(self.sw, "br-ten", f"vt-{short}", ns, mac=host["tenantry_target_tenant_mac"], address=tenant_ip,
                        ifname="eth1")  # fmt: skip
        self.srv = netlab.netns("msrv")
        netlab.plug(self.sw, "br-mgmt", "up0", self.srv, mac=GATEWAY_MAC, address=GATEWAY + "/20")
        self.script = work / "bound.sh"
        self.script.write_text(BOUND_SCRIPT)
        self.script.chmod(0o755)

    def allocation(self) -> dict[str, dict[str, Any]]:
        """Each target's host variables, as the tenants inventory plugin allocates them."""
        found = {}
        for name in ("acme-target-01", "globex-target-01"):
            proc = subprocess.run(
                [str(REPO / ".venv" / "bin" / "ansible-inventory"), "-i", str(self.inventory), "--host", name],
                capture_output=True, text=True, env=ansible_env(), check=True, cwd=REPO,
            )  # fmt: skip
            found[name] = json.loads(proc.stdout)
        return found

    def onboard(self, *flags: str) -> PlaybookRun:
        """The onboarding playbook itself, limited to its request and ARP-lock plays (the only hosts here)."""
        return run_playbook(REPO / "playbooks" / "onboard_tenant.yml", "-i", str(self.inventory),
                            "--limit", "localhost,switches", *flags)  # fmt: skip

    def counters(self) -> dict[str, int]:
        return nft_counters(self.sw, MGMT_TABLE)

    def run(self, short: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return self.netlab.run(self.ns.get(short, short), *argv)

    def lease(self, short: str) -> str | None:
        out = self.work / f"lease-{short}"
        out.unlink(missing_ok=True)
        self.run(short, "env", f"OUT={out}", "busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "3", "-T", "1",
                 "-s", str(self.script))  # fmt: skip
        return out.read_text().strip() if out.exists() else None

    def ping(self, short: str, address: str) -> bool:
        return self.run(short, "ping", "-c", "1", "-W", "1", address).returncode == 0

    def use_address(self, short: str, address: str) -> None:
        self.run(short, "ip", "address", "flush", "dev", "eth0")
        self.run(short, "ip", "address", "add", address + "/20", "dev", "eth0")

    def neighbour(self, address: str) -> str:
        return self.netlab.run(self.srv, "ip", "neigh", "show", address).stdout


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Counter increases; drop_other is left out: the kernel's own IPv6 (router solicitations) lands there."""
    return {name: after[name] - before[name] for name in after if name != "drop_other"}


@pytest.fixture(scope="module")
def site(netlab: NetLab, tmp_path_factory: pytest.TempPathFactory) -> Site:
    site = Site(netlab, tmp_path_factory.mktemp("management-lock"))
    hosts = " ".join(
        f"--dhcp-host={t['tenantry_target_mgmt_mac']},{t['tenantry_target_mgmt_ip']},{name}"
        for name, t in site.targets.items()
    ).split()
    log = site.work / "dnsmasq.log"
    netlab.start(site.srv, ["dnsmasq", "--keep-in-foreground", "--port=0", "--bind-interfaces", "--interface=eth0",
                            "--dhcp-range=10.0.16.0,static,255.255.240.0", f"--dhcp-leasefile={site.work}/leases",
                            f"--pid-file={site.work}/dnsmasq.pid", f"--log-facility={log}.dhcp", "--log-dhcp", *hosts],
                 log)  # fmt: skip
    deadline = time.monotonic() + 10
    while not (Path(f"{log}.dhcp").exists() and "DHCP" in Path(f"{log}.dhcp").read_text(errors="replace")):
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.05)
    return site


@pytest.fixture(scope="module")
def onboarded(site: Site) -> list[PlaybookRun]:
    """Check mode, apply, check mode, apply (STYLE rule 21)."""
    return [site.onboard(*flags) for flags in (("--check", "--diff"), (), ("--check",), ())]


def lock_results(run: PlaybookRun) -> dict[str, dict[str, Any]]:
    """The lock task's result per switch (bridge_arp_lock results carry ``commands``)."""
    found = [r for r in run.results if "commands" in r and "after" in r and "bindings" in r.get("after", {})]
    return {r["after"]["bindings"][0]["port"][:2]: r for r in found}


def test_both_sides_locked_from_the_tenant_files_idempotently(site: Site, onboarded: list[PlaybookRun]) -> None:
    for run in onboarded:
        assert run.rc == 0, run.stdout[-4000:] + run.stderr[-2000:]
    per_run = [lock_results(run) for run in onboarded]
    assert [sorted(r) for r in per_run] == [["vm", "vt"]] * 4
    assert [[r[side]["changed"] for side in ("vm", "vt")] for r in per_run] == [
        [True, True], [True, True], [False, False], [False, False]
    ]  # fmt: skip
    acme, globex = site.targets["acme-target-01"], site.targets["globex-target-01"]
    management = per_run[3]["vm"]["after"]["bindings"]
    assert management == [
        {"tenant": "acme", "port": "vm-a1", "mac": acme["tenantry_target_mgmt_mac"],
         "ip": acme["tenantry_target_mgmt_ip"], "network": "10.0.16.0/20", "vlan": None},
        {"tenant": "globex", "port": "vm-g1", "mac": globex["tenantry_target_mgmt_mac"],
         "ip": globex["tenantry_target_mgmt_ip"], "network": "10.0.16.0/20", "vlan": None},
    ]  # fmt: skip
    assert [b["port"] for b in per_run[3]["vt"]["after"]["bindings"]] == ["vt-a1", "vt-g1"]
    assert {MGMT_TABLE, TENANT_TABLE} <= set(nft_tables(site.sw))


def test_reserved_addresses_pass_the_management_lock(site: Site, onboarded: list[PlaybookRun]) -> None:
    before = site.counters()
    for short, target in (("a1", "acme-target-01"), ("g1", "globex-target-01")):
        leased = site.lease(short)  # DHCP discover from 0.0.0.0 and the reply pass the lock
        assert leased == site.targets[target]["tenantry_target_mgmt_ip"]
        site.use_address(short, leased)
        assert site.ping(short, GATEWAY)
    assert set(delta(before, site.counters()).values()) == {0}
    assert site.targets["globex-target-01"]["tenantry_target_mgmt_mac"] in site.neighbour(
        site.targets["globex-target-01"]["tenantry_target_mgmt_ip"]
    )


def test_another_tenants_management_address_is_dropped(site: Site, onboarded: list[PlaybookRun]) -> None:
    """acme's target, with root, sets a static IP: globex's target's management address."""
    acme, globex = site.targets["acme-target-01"], site.targets["globex-target-01"]
    victim_ip = globex["tenantry_target_mgmt_ip"]
    own_ip = acme["tenantry_target_mgmt_ip"]
    mac = bytes.fromhex(acme["tenantry_target_mgmt_mac"].replace(":", ""))
    stolen = socket.inet_aton(victim_ip)
    before = site.counters()
    sniffer = site.netlab.socket(site.srv)
    try:
        drain(sniffer)
        site.use_address("a1", victim_ip)
        assert not site.ping("a1", GATEWAY)  # its ARP claims globex's address: dropped
        site.run("a1", "ip", "neigh", "replace", GATEWAY, "lladdr", GATEWAY_MAC, "dev", "eth0", "nud", "permanent")
        assert not site.ping("a1", GATEWAY)  # no ARP needed now: the IPv4 source is globex's: dropped
        seen = receive(sniffer, 0.5, lambda f: f[6:12] == mac and stolen in f)
    finally:
        sniffer.close()
        site.run("a1", "ip", "neigh", "flush", "dev", "eth0")
        site.use_address("a1", own_ip)
    assert seen == []  # nothing from acme's target carrying globex's address reached the gateway
    dropped = delta(before, site.counters())
    assert dropped["drop_arp"] >= 1 and dropped["drop_ip"] >= 1, dropped
    assert globex["tenantry_target_mgmt_mac"] in site.neighbour(victim_ip)  # the gateway was not poisoned
    assert site.ping("g1", GATEWAY) and site.ping("a1", GATEWAY)  # both targets still work


def test_another_targets_management_mac_is_dropped(site: Site, onboarded: list[PlaybookRun]) -> None:
    acme, globex = site.targets["acme-target-01"], site.targets["globex-target-01"]
    before = site.counters()
    site.run("a1", "ip", "link", "set", "eth0", "address", globex["tenantry_target_mgmt_mac"])
    site.use_address("a1", globex["tenantry_target_mgmt_ip"])
    try:
        assert not site.ping("a1", GATEWAY)
    finally:
        site.run("a1", "ip", "link", "set", "eth0", "address", acme["tenantry_target_mgmt_mac"])
        site.use_address("a1", acme["tenantry_target_mgmt_ip"])
    assert delta(before, site.counters())["drop_mac"] >= 1
    assert site.ping("a1", GATEWAY)
