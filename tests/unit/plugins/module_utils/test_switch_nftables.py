"""Linux bridge ARP lock, pure part: the nft script, reading `nft -j` listings, and plans per state.

The listings below have the shapes nft 1.0.6 (Debian bookworm) prints; the integration tests in
tests/integration/network run the same code against the real nft.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ansible_collections.tenantry.msp.plugins.module_utils._switch import nftables
from ansible_collections.tenantry.msp.plugins.module_utils._switch.bindings import (
    BindingError,
    LockConfig,
    build_config,
    linux_port,
)

TABLE = "tenantry_arp_lock"
ACME_1 = {
    "tenant": "acme",
    "port": "vt-acme-1",
    "mac": "00:50:56:00:65:03",
    "ip": "10.210.0.11",
    "network": "10.210.0.0/24",
    "vlan": 210,
}
ACME_2 = dict(ACME_1, port="vt-acme-2", mac="00:50:56:00:65:05", ip="10.210.0.12")
GLOBEX_1 = {
    "tenant": "globex",
    "port": "vt-globex-1",
    "mac": "00:50:56:00:66:03",
    "ip": "10.220.0.11",
    "network": "10.220.0.0/24",
}


def config(*bindings: dict[str, Any], complete: bool = True, **raw: Any) -> LockConfig:
    return build_config(
        {"bindings": list(bindings), **raw}, port_name=linux_port, require_vlan=False, complete=complete
    )


def listing(cfg: LockConfig, *, rate: int = 15, signature: str | None = None, drops: int = 0) -> str:
    """`nft -j list table bridge tenantry_arp_lock` as nft 1.0.6 prints it for a table holding ``cfg``."""
    base = {"family": "bridge", "table": TABLE}
    state = nftables.state_for(cfg, TABLE)
    objects: list[dict[str, Any]] = [
        {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
        {"table": {"family": "bridge", "name": TABLE, "handle": 2}},
    ]
    objects += [
        {"counter": {**base, "name": n, "handle": 4, "packets": drops, "bytes": 60 * drops}} for n in nftables.COUNTERS
    ]
    objects += [
        {
            "set": {
                **base,
                "name": "ports",
                "type": "ifname",
                "handle": 10,
                "elem": [{"elem": {"val": p, "comment": c}} for p, c in sorted(state.ports)],
            }
        },
        {
            "set": {
                **base,
                "name": "macs",
                "type": ["ifname", "ether_addr"],
                "handle": 11,
                "elem": [{"concat": [p, m]} for p, m in sorted(state.macs)],
            }
        },
        {
            "set": {
                **base,
                "name": "bindings",
                "type": ["ifname", "ether_addr", "ipv4_addr"],
                "handle": 12,
                "elem": [
                    {"elem": {"val": {"concat": [p, m, i]}, "comment": c}} for p, m, i, c in sorted(state.bindings)
                ],
            }
        },
        {
            "set": {
                **base,
                "name": "arp_rate",
                "type": "ifname",
                "handle": 13,
                "size": 65535,
                "flags": ["timeout"],
                "timeout": 60,
            }
        },
        {
            "chain": {
                **base,
                "name": "prerouting",
                "handle": 1,
                "type": "filter",
                "hook": "prerouting",
                "prio": -200,
                "policy": "accept",
            }
        },
        {
            "rule": {
                **base,
                "chain": "prerouting",
                "handle": 14,
                "comment": signature if signature is not None else nftables.signature(TABLE, rate),
                "expr": [
                    {"match": {"op": "!=", "left": {"meta": {"key": "iifname"}}, "right": "@ports"}},
                    {"accept": None},
                ],
            }
        },
        {
            "rule": {
                **base,
                "chain": "arp_check",
                "handle": 19,
                "expr": [
                    {
                        "set": {
                            "op": "update",
                            "elem": {"meta": {"key": "iifname"}},
                            "set": "@arp_rate",
                            "stmt": [{"limit": {"rate": rate, "burst": rate, "per": "second", "inv": True}}],
                        }
                    },
                    {"counter": "drop_arp_rate"},
                    {"drop": None},
                ],
            }
        },
    ]
    # another table of the same family must be left alone
    objects.append({"table": {"family": "bridge", "name": "someone_else", "handle": 9}})
    objects.append(
        {"set": {"family": "bridge", "table": "someone_else", "name": "ports", "type": "ifname", "elem": ["x"]}}
    )
    return json.dumps({"nftables": objects})


def test_rendered_script_creates_only_its_table() -> None:
    lines = nftables.render(config(ACME_1, GLOBEX_1), TABLE)
    assert lines[:3] == [f"add table bridge {TABLE}", f"delete table bridge {TABLE}", f"table bridge {TABLE} {{"]
    assert all(TABLE in line for line in lines if line.startswith(("add", "delete", "table")))
    text = "\n".join(lines)
    assert "type filter hook prerouting priority filter; policy accept;" in text
    assert "limit rate over 15/second burst 15 packets" in text
    assert 'udp sport 67 counter name "drop_dhcp_server" drop' in text
    assert (
        f'add element bridge {TABLE} bindings {{ "vt-acme-1" . 00:50:56:00:65:03 . 10.210.0.11 '
        'comment "tenant=acme network=10.210.0.0/24 vlan=210", "vt-globex-1" . 00:50:56:00:66:03 . 10.220.0.11 '
        'comment "tenant=globex network=10.220.0.0/24" }'
    ) in lines
    assert (
        f'add element bridge {TABLE} macs {{ "vt-acme-1" . 00:50:56:00:65:03, "vt-globex-1" . 00:50:56:00:66:03 }}'
        in lines
    )


def test_listing_reads_back_into_the_bindings() -> None:
    cfg = config(ACME_1, ACME_2, GLOBEX_1, arp_rate=20)
    state = nftables.parse_listing(listing(cfg, rate=20, drops=3), TABLE)
    assert state.exists and state.arp_rate == 20
    assert state.counters == dict.fromkeys(nftables.COUNTERS, 3)
    assert nftables.to_config(state) == cfg
    assert nftables.to_config(state).by_port()["vt-globex-1"].vlan is None


def test_no_table_means_empty_state() -> None:
    empty = json.dumps({"nftables": [{"metainfo": {"version": "1.0.6"}}]})
    assert nftables.parse_listing(empty, TABLE) == nftables.TableState()
    with pytest.raises(ValueError, match="not the JSON"):
        nftables.parse_listing("table bridge x {", TABLE)


def test_same_bindings_change_nothing() -> None:
    cfg = config(ACME_1, GLOBEX_1)
    current = nftables.parse_listing(listing(cfg), TABLE)
    for state in ("merged", "replaced", "overridden"):
        plan = nftables.plan(current, cfg, state, TABLE)
        assert plan.lines == [], state
        assert plan.before == plan.after == cfg


def test_removing_a_tenant_deletes_only_its_elements() -> None:
    current = nftables.parse_listing(listing(config(ACME_1, ACME_2, GLOBEX_1)), TABLE)
    plan = nftables.plan(current, config(tenants=["globex"], complete=False), "deleted", TABLE)
    assert plan.lines == [
        f'delete element bridge {TABLE} bindings {{ "vt-globex-1" . 00:50:56:00:66:03 . 10.220.0.11 }}',
        f'delete element bridge {TABLE} macs {{ "vt-globex-1" . 00:50:56:00:66:03 }}',
        f'delete element bridge {TABLE} ports {{ "vt-globex-1" }}',
    ]
    assert sorted(plan.after.by_port()) == ["vt-acme-1", "vt-acme-2"]


def test_replaced_swaps_one_tenant_and_keeps_the_counters() -> None:
    current = nftables.parse_listing(listing(config(ACME_1, ACME_2, GLOBEX_1)), TABLE)
    moved = dict(ACME_2, mac="00:50:56:00:65:09")
    plan = nftables.plan(current, config(moved), "replaced", TABLE)
    assert not any(line.startswith(("table", "delete table")) for line in plan.lines)  # no rebuild
    assert f'delete element bridge {TABLE} ports {{ "vt-acme-1" }}' in plan.lines
    assert f'add element bridge {TABLE} macs {{ "vt-acme-2" . 00:50:56:00:65:09 }}' in plan.lines
    assert sorted(plan.after.by_port()) == ["vt-acme-2", "vt-globex-1"]


def test_a_changed_comment_replaces_the_element() -> None:
    current = nftables.parse_listing(listing(config(ACME_1)), TABLE)
    plan = nftables.plan(current, config(dict(ACME_1, vlan=211)), "merged", TABLE)
    assert plan.lines == [
        f'delete element bridge {TABLE} bindings {{ "vt-acme-1" . 00:50:56:00:65:03 . 10.210.0.11 }}',
        f'add element bridge {TABLE} bindings {{ "vt-acme-1" . 00:50:56:00:65:03 . 10.210.0.11 '
        'comment "tenant=acme network=10.210.0.0/24 vlan=211" }',
    ]


def test_another_rate_or_foreign_rules_rebuild_the_table() -> None:
    cfg = config(ACME_1)
    current = nftables.parse_listing(listing(cfg), TABLE)
    plan = nftables.plan(current, config(ACME_1, arp_rate=30), "merged", TABLE)
    assert plan.lines[:2] == [f"add table bridge {TABLE}", f"delete table bridge {TABLE}"]
    assert any("limit rate over 30/second" in line for line in plan.lines)
    assert plan.before.arp_rate == 15 and plan.after.arp_rate == 30
    tampered = nftables.parse_listing(listing(cfg, signature="edited by hand"), TABLE)
    assert nftables.plan(tampered, cfg, "merged", TABLE).lines[1] == f"delete table bridge {TABLE}"


def test_deleted_without_scope_removes_the_table_and_nothing_else() -> None:
    current = nftables.parse_listing(listing(config(ACME_1)), TABLE)
    plan = nftables.plan(current, LockConfig(), "deleted", TABLE)
    assert plan.lines == [f"delete table bridge {TABLE}"]
    assert nftables.plan(nftables.TableState(), LockConfig(), "deleted", TABLE).lines == []
    assert nftables.plan(nftables.TableState(), config(tenants=["acme"]), "deleted", TABLE).lines == []


def test_a_merge_that_reuses_a_bound_mac_is_refused() -> None:
    current = nftables.parse_listing(listing(config(ACME_1)), TABLE)
    thief = dict(GLOBEX_1, mac=ACME_1["mac"])
    with pytest.raises(BindingError, match="ports vt-acme-1 and vt-globex-1 both claim MAC 00:50:56:00:65:03"):
        nftables.plan(current, config(thief), "merged", TABLE)


def test_table_names() -> None:
    assert nftables.valid_table("tenantry_arp_lock") == "tenantry_arp_lock"
    with pytest.raises(ValueError):
        nftables.valid_table("bad; flush ruleset")
