# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""One declarative file per tenant: schema, validation, cross-tenant conflicts, allocations.

A tenant file (``inventories/<site>/tenants/<name>.yml``) is checked in three steps before
anything touches infrastructure: its structure (ansible-core's own argument-spec
validator: types, choices, required and unknown keys), its meaning (ranges, addresses
inside networks), and its neighbours (no two tenants share a name, id, VLAN, network,
pool, switch port, or a destination VLAN another tenant owns).  Every message names the
file and the field.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from typing import Any

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import RequiredError, UnsupportedError

from ansible_collections.tenantry.msp.plugins.module_utils._allocation import (
    VMWARE_MANUAL_MACS,
    AllocationError,
    nth_address,
    parse_range,
    range_set,
    target_ip,
    target_mac,
)

try:
    import netaddr
except ImportError:  # pragma: no cover - the inventory plugin reports it
    netaddr = None

# Where a route leaves the nested target: its management VMkernel NIC (vmk0, the provider's management
# network) or its tenant VMkernel NIC (the customer network).
ROUTE_INTERFACES = ("management", "tenant")

# Static routes back to provider services: the tenant file's field and the nested_host option.
ROUTES_SPEC: dict[str, Any] = {
    "type": "list",
    "elements": "dict",
    "default": [],
    "options": {
        "network": {"type": "str", "required": True},
        "gateway": {"type": "str", "required": True},
        "interface": {"type": "str", "default": "management", "choices": list(ROUTE_INTERFACES)},
        "description": {"type": "str", "default": ""},
    },
}

# Backups (docs/backup.md): the tenant's repository and its backup jobs, applied by onboarding.
_RETENTION = {
    k: {"type": "int", "default": 0}
    for k in ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
}
BACKUPS_SPEC: dict[str, Any] = {
    "type": "dict",
    "default": {},
    "options": {
        "repository": {
            "type": "dict",
            "default": {},
            "options": {
                "location": {"type": "str", "default": "msp", "choices": ["msp", "site"]},
                "quota_gb": {"type": "float", "default": 0},
                "secondary": {"type": "bool", "default": False},
                "check_subset": {"type": "str", "default": "5%"},
                "check_schedule": {"type": "str", "default": "30 3 * * *"},
            },
        },
        "jobs": {
            "type": "list",
            "elements": "dict",
            "default": [],
            "options": {
                "name": {"type": "str", "required": True},
                "vms": {"type": "list", "elements": "str", "required": True},
                "schedule": {"type": "str", "default": ""},
                "retention": {"type": "dict", "default": {}, "options": _RETENTION},
                "changed_blocks": {"type": "bool", "default": False},
                "enabled": {"type": "bool", "default": True},
            },
        },
    },
}
_JOB_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")
_CRON_CHARS = set("0123456789*,-/")

# The switch port of a target's management vNIC (the provider management network), locked like the tenant port.
MANAGEMENT_PORT_SPEC: dict[str, Any] = {
    "type": "dict",
    "options": {
        "switch": {"type": "str", "required": True},
        "port": {"type": "str", "required": True},
    },
}

TENANT_SPEC: dict[str, Any] = {
    "name": {"type": "str", "required": True},
    "id": {"type": "int", "required": True},
    "type": {"type": "str", "default": "remote", "choices": ["remote", "local"]},
    "description": {"type": "str", "default": ""},
    "contact": {"type": "str", "default": ""},
    "workload_quota": {"type": "int", "default": 0},
    "vlan": {"type": "int", "required": True},
    "network": {
        "type": "dict",
        "required": True,
        "options": {
            "cidr": {"type": "str", "required": True},
            "gateway": {"type": "str", "required": True},
            "dns": {"type": "list", "elements": "str", "default": []},
            "pool": {"type": "str", "required": True},
        },
    },
    "targets": {
        "type": "dict",
        "required": True,
        "options": {
            "count": {"type": "int", "default": 1},
            "cpus": {"type": "int", "default": 4},
            "memory_mb": {"type": "int", "default": 8192},
            "disk_gb": {"type": "int", "default": 32},
        },
    },
    "nfs": {
        "type": "dict",
        "required": True,
        "options": {
            "server": {"type": "str", "required": True},
            "path": {"type": "str", "required": True},
            "size_gb": {"type": "int", "default": 1024},
            "datastore": {"type": "str"},
        },
    },
    "production": {
        "type": "dict",
        "required": True,
        "options": {
            "account": {"type": "str", "required": True},
            "folder": {"type": "str"},
            "resource_pool": {"type": "str"},
        },
    },
    "failover": {
        "type": "dict",
        "default": {},
        "options": {
            "destination_vlans": {"type": "list", "elements": "int", "default": []},
            "boot_order": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "vms": {"type": "list", "elements": "str", "required": True},
                    "delay": {"type": "int", "default": 0},
                },
            },
        },
    },
    "default_gateway": {"type": "str"},
    "routes": ROUTES_SPEC,
    "backups": BACKUPS_SPEC,
    "switch_ports": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {
            "target": {"type": "int", "required": True},
            "switch": {"type": "str", "required": True},
            "port": {"type": "str", "required": True},
            "management": MANAGEMENT_PORT_SPEC,
        },
    },
}

SITE_DEFAULTS: dict[str, Any] = {
    "mac_pool": VMWARE_MANUAL_MACS,
    "max_targets_per_tenant": 16,
    "management_pool": None,
    # The provider management network the targets' vmk0 are on (CIDR; default: management_pool when it is
    # one) and its VLAN (needed to lock management ports on a Cisco IOS switch).
    "management_network": None,
    "management_vlan": None,
}


class TenantError(ValueError):
    """A tenant file (or the set of them) is not valid; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def _ip(value: str) -> Any:
    return netaddr.IPAddress(value)


def _valid_ip(value: str) -> bool:
    try:
        netaddr.IPAddress(value, flags=netaddr.INET_PTON)
        return True
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return False


def _network(value: str) -> Any | None:
    try:
        net = netaddr.IPNetwork(value)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None
    return net if "/" in str(value) else None


# Tenant names become VM, folder, port group, account and Director names: ASCII, lower case, like
# a DNS label (the Director refuses anything else), so no name can look like another one.
NAME_PATTERN = re.compile(r"^[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?$")


def _structure_errors(result: Any, source: str) -> list[str]:
    """One message per problem the argument-spec validator found, a "did you mean" for a misspelt key.

    ansible-core's messages list several keys at once and every allowed one; they are split here
    into one line per field, and a required field that is only missing because its name was
    misspelt is reported once, as the misspelling.
    """
    unknown: dict[str, str | None] = {}  # field -> the field it probably meant
    missing: list[str] = []
    other: list[str] = []
    for error in result.errors:
        text = str(error)
        if isinstance(error, UnsupportedError):
            for field in text.split(". Supported parameters include", 1)[0].split(", "):
                unknown[field.strip()] = _closest(field.strip())
        elif isinstance(error, RequiredError) and text.startswith("missing required arguments: "):
            names, _sep, within = text[len("missing required arguments: ") :].partition(" found in ")
            missing += ["%s.%s" % (within, name) if within else name for name in names.split(", ")]
        else:
            other.append(text)
    meant = {m for m in unknown.values() if m}
    errors = ["%s: %s: required, and missing" % (source, field) for field in missing if field not in meant]
    for field, close in unknown.items():
        parent = field.rpartition(".")[0]
        hint = "did you mean %r?" % close.rpartition(".")[2] if close else "allowed: " + ", ".join(_allowed(parent))
        errors.append("%s: %s: unknown field; %s" % (source, field, hint))
    errors += ["%s: %s" % (source, text) for text in other]
    return list(dict.fromkeys(errors))


def _allowed(parent: str) -> list[str]:
    spec: dict[str, Any] = TENANT_SPEC
    for part in [p for p in re.split(r"[.\[\]]", parent) if p and not p.isdigit()]:
        spec = spec.get(part, {}).get("options", {})
    return sorted(spec)


def _closest(field: str) -> str | None:
    """The allowed field a misspelt one most likely meant, with its parent path."""
    parent, _sep, key = field.rpartition(".")
    close = difflib.get_close_matches(key, _allowed(parent), n=1)
    if not close:
        return None
    return "%s.%s" % (parent, close[0]) if parent else close[0]


def _overlap(a: Any, b: Any) -> bool:
    return bool(netaddr.IPSet([a.cidr]) & netaddr.IPSet([b.cidr]))


def portgroup_name(tenant: str, vlan: int) -> str:
    """The standard portgroup carrying ``vlan`` for ``tenant`` on the provider's hosts."""
    return "tenant-%s-vlan%d" % (tenant, vlan)


def management_network(site: dict[str, Any]) -> Any | None:
    """The provider management network of the targets' vmk0: ``management_network``, else a CIDR ``management_pool``."""
    for key in ("management_network", "management_pool"):
        net = _network(site.get(key) or "")
        if net is not None:
            return net
    return None


def _check_default_gateway(t: dict[str, Any], net: Any, err: Any) -> None:
    """The target's default gateway is on the customer network (the seed's routing model)."""
    given = t["default_gateway"] is not None
    gateway = t["default_gateway"] if given else t["network"]["gateway"]
    field = "default_gateway" if given else "network.gateway"
    if not _valid_ip(gateway) or _ip(gateway) not in net:
        if given:
            err(
                field,
                "%s is not an address inside the tenant network %s (the default route leaves by the "
                "customer network)" % (gateway, net.cidr),
            )
        return
    if net.prefixlen < 31 and _ip(gateway) in (net.network, net.broadcast):
        err(field, "%s is the network or broadcast address of %s" % (gateway, net.cidr))
    try:
        lo, hi = parse_range(t["network"]["pool"], "network.pool")
        if lo <= int(_ip(gateway)) <= hi:
            err(
                field,
                "%s is inside network.pool %s, whose addresses go to the targets" % (gateway, t["network"]["pool"]),
            )
    except AllocationError:
        pass  # reported for network.pool
    t["default_gateway"] = str(_ip(gateway))


def _check_routes(t: dict[str, Any], net: Any, mgmt_net: Any | None, err: Any) -> None:
    """Tight static routes: each names the interface it leaves by, and its gateway is reachable there."""
    seen: dict[str, int] = {}
    for i, route in enumerate(t["routes"]):
        field = "routes[%d]" % i
        destination = _network(route["network"])
        if destination is None or destination.version != 4:
            err(field + ".network", "%r is not an IPv4 network in CIDR form" % route["network"])
        elif destination.prefixlen == 0:
            err(
                field + ".network",
                "%s is the default route: set default_gateway (on the customer network) instead" % destination.cidr,
            )
        elif _overlap(net, destination):
            err(
                field + ".network",
                "%s overlaps the tenant network %s: a route leads to the provider's infrastructure, "
                "outside the tenant network" % (destination.cidr, net.cidr),
            )
        elif mgmt_net is not None and _overlap(mgmt_net, destination):
            err(
                field + ".network",
                "%s overlaps the management network %s, which vmk0 reaches without a route"
                % (destination.cidr, mgmt_net.cidr),
            )
        else:
            route["network"] = str(destination.cidr)
            if route["network"] in seen:
                err(field + ".network", "%s is already routes[%d]" % (route["network"], seen[route["network"]]))
            seen.setdefault(route["network"], i)
        gateway = route["gateway"]
        if not _valid_ip(gateway) or _ip(gateway).version != 4:
            err(field + ".gateway", "%r is not an IPv4 address" % gateway)
            continue
        if route["interface"] == "tenant":
            where, inside = "the tenant network %s" % net.cidr, net
        elif mgmt_net is None:
            err(
                field + ".gateway",
                "interface management needs the provider's management network: set "
                "management_network (or management_pool as a CIDR) in the tenants inventory",
            )
            continue
        else:
            where, inside = "the management network %s" % mgmt_net.cidr, mgmt_net
        if _ip(gateway) not in inside or (inside.prefixlen < 31 and _ip(gateway) in (inside.network, inside.broadcast)):
            other = "management" if route["interface"] == "tenant" else "tenant"
            err(
                field + ".gateway",
                "%s is not reachable on interface %s: it is not a host address of %s (a gateway "
                "on the other network needs interface: %s)" % (gateway, route["interface"], where, other),
            )


def validate_tenant(data: Any, source: str, site: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check one tenant; return it normalised (defaults filled in) or raise ``TenantError``."""
    site = {**SITE_DEFAULTS, **(site or {})}
    if not isinstance(data, dict):
        raise TenantError(["%s: a tenant file must be a mapping of fields, got %s" % (source, type(data).__name__)])
    result = ArgumentSpecValidator(TENANT_SPEC).validate(data)
    errors = _structure_errors(result, source)
    if errors:
        raise TenantError(errors)
    t: dict[str, Any] = result.validated_parameters

    def err(field: str, msg: str) -> None:
        errors.append("%s: %s: %s" % (source, field, msg))

    name = t["name"]
    if not NAME_PATTERN.match(name):
        err(
            "name",
            "%r must be ASCII lower-case letters, digits and '-', start with a letter and end with a letter or "
            "digit, at most 40 characters" % name,
        )
    width = int(site["max_targets_per_tenant"])
    if t["id"] < 1:
        err("id", "%d must be 1 or more" % t["id"])
    if not 1 <= t["vlan"] <= 4094:
        err("vlan", "%d is outside 1-4094" % t["vlan"])
    for i, vlan in enumerate(t["failover"]["destination_vlans"]):
        if not 1 <= vlan <= 4094:
            err("failover.destination_vlans[%d]" % i, "%d is outside 1-4094" % vlan)
        elif vlan == t["vlan"]:
            err(
                "failover.destination_vlans[%d]" % i, "%d is the tenant's replication VLAN, not a production one" % vlan
            )
    if not 1 <= t["targets"]["count"] <= width:
        err("targets.count", "%d is outside 1-%d (max_targets_per_tenant)" % (t["targets"]["count"], width))
    for field, low in (("cpus", 1), ("memory_mb", 1024), ("disk_gb", 8)):
        if t["targets"][field] < low:
            err("targets.%s" % field, "%d is below the minimum %d" % (t["targets"][field], low))
    if t["workload_quota"] < 0:
        err("workload_quota", "%d must be 0 (unlimited) or more" % t["workload_quota"])

    net = _network(t["network"]["cidr"])
    if net is None or net.version != 4:
        err("network.cidr", "%r is not an IPv4 network in CIDR form such as 10.210.0.0/24" % t["network"]["cidr"])
    else:
        t["network"]["cidr"] = str(net.cidr)
        if not _valid_ip(t["network"]["gateway"]) or _ip(t["network"]["gateway"]) not in net:
            err("network.gateway", "%s is not an address inside %s" % (t["network"]["gateway"], net.cidr))
        for i, dns in enumerate(t["network"]["dns"]):
            if not _valid_ip(dns):
                err("network.dns[%d]" % i, "%r is not an IP address" % dns)
        try:
            lo, hi = parse_range(t["network"]["pool"], "network.pool")
            if lo < net.first or hi > net.last:
                err("network.pool", "%s is not inside %s" % (t["network"]["pool"], net.cidr))
            elif hi - lo + 1 < t["targets"]["count"]:
                err(
                    "network.pool",
                    "%s holds %d addresses, fewer than targets.count %d"
                    % (t["network"]["pool"], hi - lo + 1, t["targets"]["count"]),
                )
        except AllocationError as exc:
            err("network.pool", str(exc))
        management = _network(site["management_pool"]) if site["management_pool"] else None
        if management is not None and _overlap(net, management):
            err(
                "network.cidr",
                "%s overlaps the provider's management_pool %s (the targets' management addresses come from it)"
                % (net.cidr, management.cidr),
            )
        mgmt_net = management_network(site)
        if (
            mgmt_net is not None
            and (management is None or mgmt_net.cidr != management.cidr)
            and _overlap(net, mgmt_net)
        ):
            err(
                "network.cidr",
                "%s overlaps the provider's management network %s (the targets' vmk0 are on it)"
                % (net.cidr, mgmt_net.cidr),
            )
        _check_default_gateway(t, net, err)
        _check_routes(t, net, mgmt_net, err)
    nfs_path = t["nfs"]["path"]
    if not nfs_path.startswith("/") or ".." in nfs_path.split("/") or posixpath.normpath(nfs_path) != nfs_path:
        err("nfs.path", "%r must be an absolute, normalised export path (no '..', '//' or trailing '/')" % nfs_path)
    seen_targets: set[int] = set()
    seen_ports: dict[tuple[str, str], str] = {}
    for i, sp in enumerate(t["switch_ports"]):
        if not 1 <= sp["target"] <= t["targets"]["count"]:
            err(
                "switch_ports[%d].target" % i,
                "%d is not a target of this tenant (1-%d)" % (sp["target"], t["targets"]["count"]),
            )
        if sp["target"] in seen_targets:
            err("switch_ports[%d].target" % i, "target %d already has a switch port" % sp["target"])
        seen_targets.add(sp["target"])
        ports = [("switch_ports[%d]" % i, (sp["switch"], sp["port"]))]
        if sp["management"] is not None:
            ports.append(("switch_ports[%d].management" % i, (sp["management"]["switch"], sp["management"]["port"])))
        for field, port in ports:
            if port in seen_ports:
                err(field, "port %s on switch %s is already %s" % (port[1], port[0], seen_ports[port]))
            seen_ports.setdefault(port, field)
    for i, step in enumerate(t["failover"]["boot_order"]):
        if step["delay"] < 0:
            err("failover.boot_order[%d].delay" % i, "%d must be 0 or more seconds" % step["delay"])
    _check_backups(t["backups"], err)
    if errors:
        raise TenantError(errors)

    # Names every role and module uses for the tenant's vSphere objects (one place for them).
    t["portgroups"] = {
        "replication": portgroup_name(name, t["vlan"]),
        "destinations": {str(v): portgroup_name(name, v) for v in t["failover"]["destination_vlans"]},
    }
    t["nfs"]["datastore"] = t["nfs"]["datastore"] or "nfs-%s" % name
    t["production"]["folder"] = t["production"]["folder"] or "tenants/%s" % name
    t["production"]["resource_pool"] = t["production"]["resource_pool"] or "tenant-%s" % name
    t["source"] = source
    return t


def _cron(text: str) -> bool:
    fields = text.split()
    return len(fields) == 5 and all(set(f) <= _CRON_CHARS for f in fields)


def _check_backups(backups: dict[str, Any], err: Any) -> None:
    """Ranges and names in ``backups`` (the Director checks schedules fully when they are applied)."""
    repo = backups["repository"]
    if repo["quota_gb"] < 0:
        err("backups.repository.quota_gb", "%s must be 0 (no quota) or more" % repo["quota_gb"])
    if repo["secondary"] and repo["location"] != "msp":
        err("backups.repository.secondary", "3-2-1 copies are made at the MSP: location must be msp")
    if repo["check_schedule"] and not _cron(repo["check_schedule"]):
        err("backups.repository.check_schedule", "%r is not five cron fields" % repo["check_schedule"])
    names: set[str] = set()
    for i, job in enumerate(backups["jobs"]):
        where = "backups.jobs[%d]" % i
        name = job["name"]
        if not name or len(name) > 63 or not set(name) <= _JOB_NAME_CHARS or name[0] == "-" or name[-1] == "-":
            err(where + ".name", "%r must be lower-case letters, digits and dashes (at most 63)" % name)
        if name in names:
            err(where + ".name", "job %r is defined twice" % name)
        names.add(name)
        if not job["vms"]:
            err(where + ".vms", "a backup job needs at least one VM")
        if len(set(job["vms"])) != len(job["vms"]):
            err(where + ".vms", "a VM is listed twice")
        if job["schedule"] and not _cron(job["schedule"]):
            err(where + ".schedule", "%r is not five cron fields (minute hour day month weekday)" % job["schedule"])
        for key, value in job["retention"].items():
            if value < 0:
                err("%s.retention.%s" % (where, key), "%d must be 0 or more" % value)


def check_conflicts(tenants: list[dict[str, Any]]) -> None:
    """Refuse two tenants that share a name, id, VLAN, network, pool, MAC-slot or switch port."""
    errors: list[str] = []
    owners: dict[tuple[str, Any], dict[str, Any]] = {}

    def claim(kind: str, value: Any, tenant: dict[str, Any], label: str) -> None:
        other = owners.get((kind, value))
        if other is not None and other is not tenant:
            errors.append(
                "%s: %s %s is already used by tenant %r (%s)"
                % (tenant["source"], label, value, other["name"], other["source"])
            )
        else:
            owners[(kind, value)] = tenant

    for t in tenants:
        claim("name", t["name"], t, "name")
        claim("id", t["id"], t, "id")
        claim("vlan", t["vlan"], t, "vlan")
        for sp in t["switch_ports"]:
            claim("port", (sp["switch"], sp["port"]), t, "switch port")
            if sp["management"] is not None:
                claim("port", (sp["management"]["switch"], sp["management"]["port"]), t, "switch port")
    for t in tenants:
        for vlan in t["failover"]["destination_vlans"]:
            owner = owners.get(("vlan", vlan))
            if owner is not None and owner is not t:
                errors.append(
                    "%s: failover.destination_vlans: VLAN %d is the replication VLAN of tenant %r (%s)"
                    % (t["source"], vlan, owner["name"], owner["source"])
                )
            claim("dest_vlan", vlan, t, "failover destination VLAN")
    for i, a in enumerate(tenants):
        for b in tenants[i + 1 :]:
            if a["nfs"]["server"] == b["nfs"]["server"] and _nested(a["nfs"]["path"], b["nfs"]["path"]):
                errors.append(
                    "%s: nfs %s:%s shares the export %s:%s of tenant %r (%s): every tenant needs an export of its own"
                    % (
                        b["source"],
                        b["nfs"]["server"],
                        b["nfs"]["path"],
                        a["nfs"]["server"],
                        a["nfs"]["path"],
                        a["name"],
                        a["source"],
                    )
                )
            if netaddr.IPSet([a["network"]["cidr"]]) & netaddr.IPSet([b["network"]["cidr"]]):
                errors.append(
                    "%s: network.cidr %s overlaps tenant %r's network %s (%s)"
                    % (b["source"], b["network"]["cidr"], a["name"], a["network"]["cidr"], a["source"])
                )
            for x, y in ((a, b), (b, a)):
                for i, route in enumerate(x["routes"]):
                    if netaddr.IPSet([route["network"]]) & netaddr.IPSet([y["network"]["cidr"]]):
                        errors.append(
                            "%s: network.cidr %s overlaps %s, the provider infrastructure tenant %r routes to "
                            "(%s routes[%d])"
                            % (y["source"], y["network"]["cidr"], route["network"], x["name"], x["source"], i)
                        )
            if range_set(a["network"]["pool"], "pool") & range_set(b["network"]["pool"], "pool"):
                errors.append(
                    "%s: network.pool %s overlaps tenant %r's pool %s (%s)"
                    % (b["source"], b["network"]["pool"], a["name"], a["network"]["pool"], a["source"])
                )
    if errors:
        raise TenantError(errors)


def _nested(a: str, b: str) -> bool:
    """One export path is the other or lies inside it."""
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def allocate(tenant: dict[str, Any], site: dict[str, Any]) -> list[dict[str, Any]]:
    """The nested targets of ``tenant`` with their deterministic addresses."""
    site = {**SITE_DEFAULTS, **site}
    width = int(site["max_targets_per_tenant"])
    ports = {
        sp["target"]: {"switch": sp["switch"], "port": sp["port"], "management": sp["management"]}
        for sp in tenant["switch_ports"]
    }
    mgmt_net = management_network(site)
    targets = []
    try:
        for index in range(1, tenant["targets"]["count"] + 1):
            targets.append(
                {
                    "name": "%s-target-%02d" % (tenant["name"], index),
                    "index": index,
                    "mgmt_mac": target_mac(tenant["id"], index, "management", site["mac_pool"], width),
                    "tenant_mac": target_mac(tenant["id"], index, "tenant", site["mac_pool"], width),
                    "mgmt_ip": target_ip(tenant["id"], index, site["management_pool"], width)
                    if site["management_pool"]
                    else None,
                    "tenant_ip": nth_address(tenant["network"]["pool"], index, "network.pool"),
                    "switch_port": ports.get(index),
                    "mgmt_network": str(mgmt_net.cidr) if mgmt_net is not None else None,
                    "mgmt_vlan": site["management_vlan"],
                }
            )
    except AllocationError as exc:
        raise TenantError(["%s: %s" % (tenant["source"], exc)]) from exc
    return targets


def load_all(documents: list[tuple[str, Any]], site: dict[str, Any]) -> list[dict[str, Any]]:
    """Validate every ``(source, data)`` and the set; collect all errors before raising.

    Returns the tenants sorted by name, each with ``targets_allocated``.
    """
    errors: list[str] = []
    tenants = []
    for source, data in documents:
        try:
            tenants.append(validate_tenant(data, source, site))
        except TenantError as exc:
            errors.extend(exc.errors)
    if errors:
        raise TenantError(errors)
    check_conflicts(tenants)
    for t in tenants:
        try:
            t["targets_allocated"] = allocate(t, site)
        except TenantError as exc:
            errors.extend(exc.errors)
    if errors:
        raise TenantError(errors)
    return sorted(tenants, key=lambda t: t["name"])
