"""NIC rules across a move (_failover/nics.py): matched by label, key, order, never by MAC; failback placement."""

from __future__ import annotations

from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._failover import nics
from ansible_collections.tenantry.msp.plugins.module_utils._failover.sites import VMRow


def row(*cards: dict[str, Any]) -> VMRow:
    return VMRow("vm", None, "", "[ds] vm/vm.vmx", "poweredOff", 16, 0, [dict(c) for c in cards], {}, None, [], None)


def card(label: str, key: int, mac: str, network: str) -> dict[str, Any]:
    return {"label": label, "key": key, "mac": mac, "network": network, "type": "VirtualVmxnet3"}


A = card("Network adapter 1", 4000, "00:0c:29:00:00:01", "lan")
B = card("Network adapter 2", 4001, "00:0c:29:00:00:02", "backup")


def test_pairs_by_label_then_key_then_order_never_by_mac() -> None:
    # A copy: new MACs and new keys, the labels kept (their place in the .vmx).
    copy = row(
        card("Network adapter 2", 7, "00:0c:29:aa:aa:02", "pg"), card("Network adapter 1", 8, "00:0c:29:aa:aa:01", "pg")
    )
    assert [(n["key"], r["label"]) for n, r in nics.pair(copy.nics, [A, B])] == [
        (7, "Network adapter 2"),
        (8, "Network adapter 1"),
    ]
    # No labels: keys; then order.
    unlabelled = row(dict(B, label=""), dict(A, label="", key=1))
    assert [r["network"] for _n, r in nics.pair(unlabelled.nics, [A, B])] == ["backup", "lan"]


def test_failback_restores_each_network_and_names_what_cannot_be_placed() -> None:
    prod = row(dict(A, network="tenant-acme-vlan310"), dict(B, network="tenant-acme-vlan310"))
    assert [(n["label"], net) for n, net in nics.to_restore(prod, [A, B])] == [
        ("Network adapter 1", "lan"),
        ("Network adapter 2", "backup"),
    ]
    assert nics.unplaceable(prod, [A, B], {"lan", "backup"}) == []
    assert nics.unplaceable(prod, [A, B], {"lan"}) == [
        "NIC 'Network adapter 2' (00:0c:29:00:00:02) goes back to network backup, which the replication target "
        "does not have"
    ]
    extra = row(*prod.nics, card("Network adapter 3", 4002, "00:50:56:80:00:03", "tenant-acme-vlan310"))
    assert nics.unplaceable(extra, [A, B], {"lan", "backup"}) == [
        "NIC 'Network adapter 3' (00:50:56:80:00:03) has no network recorded on the replication target"
    ]


def test_failover_moves_every_nic_and_reports_missing_ones() -> None:
    registered = row(A)
    assert [n["label"] for n, _pg in nics.to_move(registered, "pg")] == ["Network adapter 1"]
    assert nics.missing(registered, [A, B]) == [B]
    assert nics.to_move(row(dict(A, network="pg")), "pg") == []


def test_the_tag_round_trips() -> None:
    assert nics.from_tag(nics.tag([A, B])) == [
        {"key": 4000, "label": "Network adapter 1", "network": "lan"},
        {"key": 4001, "label": "Network adapter 2", "network": "backup"},
    ]
    assert nics.from_tag("not json") == [] and nics.from_tag(None) == []
