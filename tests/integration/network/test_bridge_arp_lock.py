"""tenantry.msp.bridge_arp_lock applied for real to a Linux bridge, then attacked from the tenant ports.

Topology (all in namespaces tagged for this run, removed at the end even on failure)::

    ns sw:  bridge br0 ─┬─ vt-acme-1   ── ns a1  eth0 00:50:56:00:65:03 10.210.0.11/24  (acme)
                        ├─ vt-acme-2   ── ns a2  eth0 00:50:56:00:65:05 10.210.0.12/24  (acme)
                        ├─ vt-globex-1 ── ns g1  eth0 00:50:56:00:66:03 10.220.0.11/24  (globex)
                        └─ up0         ── ns gw  eth0 02:00:00:00:00:01 10.210.0.1/24, 10.220.0.1/24 (uplink)

The module runs through ansible-playbook on localhost with ``netns: <sw>``, so the table lives in the
lab's namespace and the machine's own ruleset is never touched.  Each attack is sent from inside a
tenant namespace with scapy; the drop is proven by the table's counter and by a sniffer on the
victim that sees the legitimate control frame sent right after the attack, but not the attack.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netlab import NetLab, drain, nft_counters, nft_tables, receive, why_not_available
from support import PlaybookRun, run_module

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(bool(reason := why_not_available("nft")), reason=reason or ""),
]

scapy_all = pytest.importorskip("scapy.all", reason="scapy crafts the attack frames (pip install scapy)")
from scapy.layers.dhcp import BOOTP, DHCP  # noqa: E402
from scapy.layers.inet import ICMP, IP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.l2 import ARP, Dot1Q, Ether  # noqa: E402

TABLE = "tenantry_arp_lock"
MODULE = "tenantry.msp.bridge_arp_lock"
BROADCAST = "ff:ff:ff:ff:ff:ff"
GW_MAC = "02:00:00:00:00:01"
HOSTS = {
    # namespace: (port, tenant, mac, ip, network)
    "a1": ("vt-acme-1", "acme", "00:50:56:00:65:03", "10.210.0.11", "10.210.0.0/24"),
    "a2": ("vt-acme-2", "acme", "00:50:56:00:65:05", "10.210.0.12", "10.210.0.0/24"),
    "g1": ("vt-globex-1", "globex", "00:50:56:00:66:03", "10.220.0.11", "10.220.0.0/24"),
}
BINDINGS = [
    {"tenant": t, "port": p, "mac": m, "ip": i, "network": n, "vlan": 210 if t == "acme" else 220}
    for p, t, m, i, n in HOSTS.values()
]


class Lab:
    def __init__(self, netlab: NetLab, work: Path) -> None:
        self.netlab = netlab
        self.work = work
        self.sw = netlab.netns("sw")
        self.ns = {name: netlab.netns(name) for name in (*HOSTS, "gw")}
        netlab.bridge(self.sw)
        for name, (port, _tenant, mac, address, network) in HOSTS.items():
            netlab.plug(self.sw, "br0", port, self.ns[name], mac=mac, address=address + "/" + network.split("/")[1])
        netlab.plug(self.sw, "br0", "up0", self.ns["gw"], mac=GW_MAC, address="10.210.0.1/24")
        subprocess.run(["ip", "-n", self.ns["gw"], "address", "add", "10.220.0.1/24", "dev", "eth0"], check=True)

    def module(self, *, check: bool = False, diff: bool = False, **args: Any) -> PlaybookRun:
        return run_module(self.work, MODULE, {"netns": self.sw, "bridge": "br0", **args}, check=check, diff=diff)

    def lock(self, bindings: list[dict[str, Any]], state: str = "replaced", **kw: Any) -> PlaybookRun:
        return self.module(config={"bindings": bindings}, state=state, **kw)

    def counters(self) -> dict[str, int]:
        return nft_counters(self.sw, TABLE)

    def listing(self) -> dict[str, Any]:
        out = subprocess.run(
            ["ip", "netns", "exec", self.sw, "nft", "-j", "list", "set", "bridge", TABLE, "bindings"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return json.loads(out)  # type: ignore[no-any-return]

    def bound_ports(self) -> list[str]:
        sets = [o["set"] for o in self.listing()["nftables"] if "set" in o]
        return sorted(e["elem"]["val"]["concat"][0] for e in sets[0].get("elem", []))

    def ping(self, source: str, target: str) -> bool:
        proc = self.netlab.run(self.ns[source], "ping", "-c", "1", "-W", "1", target)
        return proc.returncode == 0

    def attack(self, source: str, victim: str, frames: list[bytes], control: bytes, marker: bytes) -> list[bytes]:
        """Send ``frames`` then ``control`` from ``source``; return what ``victim`` saw of either
        (frames are recognised by ``marker`` or by being byte-identical)."""
        sender = self.netlab.socket(self.ns[source])
        sniffer = self.netlab.socket(self.ns[victim])
        try:
            drain(sniffer)
            for frame in [*frames, control]:
                sender.send(frame)
            wanted = {*frames, control}
            return receive(sniffer, 0.5, lambda f: f in wanted or marker in f)
        finally:
            sender.close()
            sniffer.close()


def host(name: str) -> tuple[str, str, str, str, str]:
    return HOSTS[name]


def icmp(src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, payload: bytes) -> bytes:
    return bytes(Ether(src=src_mac, dst=dst_mac) / IP(src=src_ip, dst=dst_ip) / ICMP() / payload)


def arp(op: int, hwsrc: str, psrc: str, pdst: str, dst: str = BROADCAST, hwdst: str = "00:00:00:00:00:00") -> bytes:
    return bytes(Ether(src=hwsrc, dst=dst) / ARP(op=op, hwsrc=hwsrc, psrc=psrc, hwdst=hwdst, pdst=pdst))


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before[name] for name in after if name != "drop_other"}


@pytest.fixture(scope="module")
def lab(netlab: NetLab, tmp_path_factory: pytest.TempPathFactory) -> Lab:
    return Lab(netlab, tmp_path_factory.mktemp("bridge-arp-lock"))


@pytest.fixture(scope="module")
def locked(lab: Lab) -> Iterator[list[PlaybookRun]]:
    """Check mode, apply, check mode, apply (STYLE rule 21); the lock then stays for the attack tests."""
    runs = [lab.lock(BINDINGS, check=True, diff=True)]
    runs.append(lab.lock(BINDINGS))
    runs.append(lab.lock(BINDINGS, check=True))
    runs.append(lab.lock(BINDINGS))
    yield runs
    final = lab.module(state="deleted")  # the table goes with the namespace anyway; prove the module removes it
    assert final.rc == 0 and final.result["changed"] is True, final.stdout[-2000:]
    assert TABLE not in nft_tables(lab.sw)


def test_check_mode_then_apply_then_nothing_to_do(lab: Lab, locked: list[PlaybookRun]) -> None:
    check, apply, check_again, apply_again = locked
    for run in locked:
        assert run.rc == 0, run.stdout[-3000:]
    assert [r.result["changed"] for r in locked] == [True, True, False, False]
    # check mode showed the bindings it would add, in the diff, without creating anything
    assert [b["port"] for b in check.result["added"]] == ["vt-acme-1", "vt-acme-2", "vt-globex-1"]
    assert "binding: vt-acme-1 00:50:56:00:65:03 10.210.0.11 tenant=acme" in check.result["diff"]["after"]
    assert check.result["after"] == apply.result["after"]
    assert apply.result["before"]["bindings"] == []
    assert apply_again.result["commands"] == []
    assert check_again.result["commands"] == []
    assert lab.bound_ports() == ["vt-acme-1", "vt-acme-2", "vt-globex-1"]
    assert apply_again.result["after"]["bindings"] == [dict(b) for b in BINDINGS]


def test_legitimate_traffic_passes(lab: Lab, locked: list[PlaybookRun]) -> None:
    before = lab.counters()
    assert lab.ping("a1", "10.210.0.12")  # tenant to tenant, ARP both ways
    assert lab.ping("a2", "10.210.0.1")  # tenant to the router behind the uplink
    assert lab.ping("g1", "10.220.0.1")
    assert lab.ping("gw", "10.210.0.11")  # the uplink is not locked
    assert set(delta(before, lab.counters()).values()) == {0}


def test_spoofed_source_ip_is_dropped(lab: Lab, locked: list[PlaybookRun]) -> None:
    _, _, mac1, ip1, _ = host("a1")
    _, _, mac2, ip2, _ = host("a2")
    spoofed = [
        icmp(mac1, mac2, "10.210.0.99", ip2, b"tenantry-spoof-unbound"),  # an address nobody was given
        icmp(mac1, GW_MAC, ip2, "10.210.0.1", b"tenantry-spoof-neighbour"),  # the other target's address
    ]
    control = icmp(mac1, mac2, ip1, ip2, b"tenantry-control-ip")
    before = lab.counters()
    seen_a2 = lab.attack("a1", "a2", spoofed[:1], control, b"tenantry-spoof")
    seen_gw = lab.attack("a1", "gw", spoofed[1:], icmp(mac1, GW_MAC, ip1, "10.210.0.1", b"x"), b"tenantry-spoof")
    assert seen_a2 == [control]
    assert len(seen_gw) == 1 and b"tenantry-spoof" not in seen_gw[0]
    dropped = delta(before, lab.counters())
    assert dropped.pop("drop_ip") == 2
    assert set(dropped.values()) == {0}


def test_poisoned_arp_reply_is_dropped(lab: Lab, locked: list[PlaybookRun]) -> None:
    _, _, mac1, ip1, _ = host("a1")
    _, _, mac2, ip2, _ = host("a2")
    _, _, _, globex_ip, _ = host("g1")
    assert lab.ping("gw", ip2)  # the router knows a2's real MAC
    poison = [
        arp(2, mac1, ip2, "10.210.0.1", dst=GW_MAC, hwdst=GW_MAC),  # "10.210.0.12 is at a1"
        arp(2, mac1, globex_ip, "10.210.0.1", dst=BROADCAST),  # another tenant's IP, broadcast
    ]
    control = arp(2, mac1, ip1, "10.210.0.1", dst=GW_MAC, hwdst=GW_MAC)
    before = lab.counters()
    seen = lab.attack("a1", "gw", poison, control, b"\x00never")
    assert seen == [control]
    assert delta(before, lab.counters())["drop_arp"] == 2
    neighbours = lab.netlab.run(lab.ns["gw"], "ip", "neigh", "show", ip2).stdout
    assert mac2 in neighbours and mac1 not in neighbours


def test_changed_mac_is_dropped(lab: Lab, locked: list[PlaybookRun]) -> None:
    _, _, mac1, _, _ = host("a1")
    a1 = lab.ns["a1"]
    before = lab.counters()
    subprocess.run(["ip", "-n", a1, "link", "set", "eth0", "address", "00:50:56:00:65:77"], check=True)
    try:
        assert not lab.ping("a1", "10.210.0.12")
        assert delta(before, lab.counters())["drop_mac"] >= 1
    finally:
        subprocess.run(["ip", "-n", a1, "link", "set", "eth0", "address", mac1], check=True)
    assert lab.ping("a1", "10.210.0.12")


def test_rogue_dhcp_offer_is_dropped(lab: Lab, locked: list[PlaybookRun]) -> None:
    _, _, mac1, ip1, _ = host("a1")
    offer = bytes(
        Ether(src=mac1, dst=BROADCAST)
        / IP(src=ip1, dst="255.255.255.255")
        / UDP(sport=67, dport=68)
        / BOOTP(op=2, yiaddr="10.210.0.200", siaddr=ip1, chaddr=bytes.fromhex("005056006505"), xid=0x1234)
        / DHCP(options=[("message-type", "offer"), ("server_id", ip1), ("router", ip1), "end"])
    )
    control = bytes(
        Ether(src=mac1, dst=BROADCAST) / IP(src=ip1, dst="255.255.255.255") / UDP(sport=5000, dport=5001) / b"ctl"
    )
    before = lab.counters()
    seen = lab.attack("a1", "a2", [offer], control, b"\x63\x82\x53\x63")  # the DHCP magic cookie
    assert seen == [control]
    assert delta(before, lab.counters())["drop_dhcp_server"] == 1


def test_ipv6_and_vlan_tagged_frames_are_dropped(lab: Lab, locked: list[PlaybookRun]) -> None:
    _, _, mac1, ip1, _ = host("a1")
    _, _, mac2, ip2, _ = host("a2")
    hop = bytes(Ether(src=mac1, dst=mac2) / Dot1Q(vlan=220) / IP(src=ip1, dst=ip2) / ICMP() / b"tenantry-hop")
    v6 = bytes(Ether(src=mac1, dst=mac2) / IPv6(src="fe80::1", dst="fe80::2") / UDP(dport=9) / b"tenantry-v6")
    before = lab.counters()["drop_other"]
    seen = lab.attack("a1", "a2", [hop, v6], icmp(mac1, mac2, ip1, ip2, b"ok"), b"tenantry-")
    assert len(seen) == 1 and b"tenantry-" not in seen[0]
    assert lab.counters()["drop_other"] - before >= 2


def test_arp_flood_above_the_rate_is_dropped(lab: Lab, locked: list[PlaybookRun]) -> None:
    _, _, mac, address, _ = host("g1")
    time.sleep(1.1)  # a full bucket: 15 packets of burst
    flood = [arp(1, mac, address, f"10.220.0.{100 + i % 100}") for i in range(300)]
    before = lab.counters()
    sender = lab.netlab.socket(lab.ns["g1"])
    sniffer = lab.netlab.socket(lab.ns["gw"])
    try:
        drain(sniffer)
        for frame in flood:
            sender.send(frame)
        arrived = receive(sniffer, 0.5, lambda f: f in flood)
    finally:
        sender.close()
        sniffer.close()
    dropped = delta(before, lab.counters())
    # 15 pass (the burst), a few more as the bucket refills while sending, the rest is dropped
    assert 15 <= len(arrived) <= 25
    # every flood frame that did not arrive was dropped by the rate (the kernel's own ARP probes may add one)
    assert 300 - len(arrived) <= dropped["drop_arp_rate"] <= 300 - len(arrived) + 3
    assert dropped["drop_arp"] == 0  # they were valid ARP: only the rate stopped them
    time.sleep(1.1)
    assert lab.ping("g1", "10.220.0.1")


def test_bad_bindings_are_refused_before_anything_changes(lab: Lab, locked: list[PlaybookRun]) -> None:
    before = lab.listing()
    outside = [dict(BINDINGS[0], ip="10.9.0.5"), *BINDINGS[1:]]
    run = lab.lock(outside)
    assert run.result.get("failed") is True
    assert "port vt-acme-1: ip 10.9.0.5 is outside the tenant network 10.210.0.0/24" in run.result["msg"]

    same_mac = [*BINDINGS[:2], dict(BINDINGS[2], mac=BINDINGS[0]["mac"])]
    run = lab.lock(same_mac)
    assert "ports vt-acme-1 and vt-globex-1 both claim MAC 00:50:56:00:65:03" in run.result["msg"]

    same_ip = [
        {**BINDINGS[2], "port": "vt-acme-3", "tenant": "initech", "ip": "10.210.0.11", "network": "10.210.0.0/24"}
    ]
    run = lab.lock(same_ip, state="merged")
    assert "ports vt-acme-1 and vt-acme-3 both claim IP 10.210.0.11" in run.result["msg"]

    not_on_bridge = [dict(BINDINGS[0], port="vt-nowhere", mac="00:50:56:00:65:21", ip="10.210.0.21")]
    run = lab.lock(not_on_bridge, state="merged")
    assert "port vt-nowhere is not a port of bridge br0" in run.result["msg"]
    assert lab.listing() == before


def test_removing_a_tenant_removes_only_its_bindings(lab: Lab, locked: list[PlaybookRun]) -> None:
    counters = lab.counters()
    assert counters["drop_arp_rate"] > 0  # earlier tests left marks; they must survive
    preview = lab.module(config={"tenants": ["globex"]}, state="deleted", check=True, diff=True)
    assert preview.result["changed"] is True
    assert [b["port"] for b in preview.result["removed"]] == ["vt-globex-1"]
    assert "vt-globex-1" in preview.result["diff"]["before"] and "vt-globex-1" not in preview.result["diff"]["after"]
    assert lab.bound_ports() == ["vt-acme-1", "vt-acme-2", "vt-globex-1"]  # check mode changed nothing

    removed = lab.module(config={"tenants": ["globex"]}, state="deleted")
    again = lab.module(config={"tenants": ["globex"]}, state="deleted")
    assert (removed.result["changed"], again.result["changed"]) == (True, False)
    assert all(line.startswith("delete element") for line in removed.result["commands"])
    assert lab.bound_ports() == ["vt-acme-1", "vt-acme-2"]
    assert all(lab.counters()[name] >= counters[name] for name in counters)  # the table was not rebuilt
    # globex's port is no longer locked; acme's still are
    _, _, mac, _, _ = host("g1")
    freed = lab.attack("g1", "gw", [], icmp(mac, GW_MAC, "10.220.0.99", "10.220.0.1", b"free"), b"free")
    assert len(freed) == 1
    assert not lab.attack("a1", "gw", [], icmp(HOSTS["a1"][2], GW_MAC, "10.210.0.99", "10.210.0.1", b"no"), b"no")


def test_gathered_reads_bindings_and_counters(lab: Lab, locked: list[PlaybookRun]) -> None:
    run = lab.module(state="gathered")
    assert run.result["changed"] is False
    assert [b["port"] for b in run.result["gathered"]["bindings"]] == ["vt-acme-1", "vt-acme-2"]
    assert set(run.result["counters"]) == {
        "drop_mac",
        "drop_arp",
        "drop_arp_rate",
        "drop_ip",
        "drop_dhcp_server",
        "drop_other",
    }
