"""drift_summary: the readable part of an audit finding, from a module's real diff shape."""

from __future__ import annotations

from ansible_collections.tenantry.msp.plugins.filter.drift import drift_summary

# The shape tenantry.msp.nested_host reports (see its RETURN), as the tenant file wants it.
WANTED = {
    "follow_hardware_mac": 1,
    "nfs": {"datastore": "nfs-acme", "server": "192.168.50.10", "path": "/exports/tenants/acme", "read_only": False},
    "account": {"user": "tenant-acme"},
    "permissions": [
        {"entity": "datastore", "role": "tenantry-tenant", "propagate": True},
        {"entity": "host", "role": "tenantry-tenant", "propagate": False},
    ],
    "services": {"TSM": {"running": False, "policy": "off"}, "TSM-SSH": {"running": False, "policy": "off"}},
}


def test_nothing_differs() -> None:
    assert drift_summary(WANTED, dict(WANTED)) == []


def test_each_kind_of_difference_is_named() -> None:
    found = {
        **WANTED,
        "follow_hardware_mac": 0,
        "nfs": None,
        "permissions": [WANTED["permissions"][1], {"entity": "vm", "role": "Admin", "propagate": True}],
        "services": {**WANTED["services"], "TSM-SSH": {"running": True, "policy": "on"}},
    }
    assert drift_summary(found, WANTED) == [
        "follow_hardware_mac: 0 -> 1",
        "nfs: missing",
        "permissions: missing datastore; not in the tenant file vm",
        "services: TSM-SSH policy on -> off, running true -> false",
    ]


def test_a_part_only_on_one_side() -> None:
    assert drift_summary({"account": {"user": "x"}}, {}) == ["account: present, not in the tenant file"]
    assert drift_summary(None, {"account": {"user": "x"}}) == ["account: missing"]
