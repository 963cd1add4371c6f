# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""Linux bridge ARP lock: one nftables table of the ``bridge`` family, owned by the lock alone.

The table (``bridge tenantry_arp_lock`` by default) filters frames as they enter the bridge
(hook prerouting) from a locked port; frames from other ports (uplinks, the host) pass untouched.
Its rules never change with the bindings: three sets carry them, keyed by the input port::

    ports     ifname                          which ports are locked (comment: tenant)
    macs      ifname . ether_addr             the one source MAC each locked port may use
    bindings  ifname . ether_addr . ipv4_addr the MAC/IP pair each locked port may claim
                                              (comment: tenant, network, VLAN)

so adding or removing a tenant is adding or removing set elements, and re-applying the same
bindings changes nothing.  Drops are counted in named counters (``drop_*``) that survive binding
changes.  The rules carry a signature of their own text (a comment on the first rule): when the
rules must change (another ARP rate, a new version of this file) the table is rebuilt in the same
atomic transaction, which resets the counters.

nft cannot compare two fields of one packet, so every check is a lookup of a concatenation of
packet fields in a set (see docs/isolation.md).  Pure functions here; ``runner`` runs ``nft``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._switch.bindings import Binding, LockConfig, check, desired

DEFAULT_TABLE = "tenantry_arp_lock"
SIGNATURE_PREFIX = "tenantry.msp/bridge_arp_lock ruleset "
COUNTERS = ("drop_mac", "drop_arp", "drop_arp_rate", "drop_ip", "drop_dhcp_server", "drop_other")
_TABLE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_COMMENT_RE = re.compile(r"(\w+)=(\S+)")

_RULESET = """\
table bridge {table} {{
  counter drop_mac {{ }}
  counter drop_arp {{ }}
  counter drop_arp_rate {{ }}
  counter drop_ip {{ }}
  counter drop_dhcp_server {{ }}
  counter drop_other {{ }}
  set ports {{ type ifname; }}
  set macs {{ type ifname . ether_addr; }}
  set bindings {{ type ifname . ether_addr . ipv4_addr; }}
  set arp_rate {{ type ifname; flags dynamic,timeout; timeout 1m; }}
  chain prerouting {{
    type filter hook prerouting priority filter; policy accept;
    iifname != @ports accept comment "{signature}"
    iifname . ether saddr != @macs counter name "drop_mac" drop
    ether type arp jump arp_check
    ether type ip jump ip_check
    counter name "drop_other" drop
  }}
  chain arp_check {{
    update @arp_rate {{ iifname limit rate over {rate}/second burst {rate} packets }} counter name "drop_arp_rate" drop
    iifname . arp saddr ether . arp saddr ip @bindings accept
    arp saddr ip 0.0.0.0 iifname . arp saddr ether @macs accept
    counter name "drop_arp" drop
  }}
  chain ip_check {{
    udp sport 67 counter name "drop_dhcp_server" drop
    ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept
    iifname . ether saddr . ip saddr @bindings accept
    counter name "drop_ip" drop
  }}
}}
"""


def valid_table(name: str) -> str:
    if not _TABLE_RE.match(name):
        raise ValueError("table %r: use a letter, then letters, digits or '_' (at most 32)" % name)
    return name


def signature(table: str, arp_rate: int) -> str:
    body = _RULESET.format(table=table, rate=arp_rate, signature="")
    return SIGNATURE_PREFIX + hashlib.sha256(body.encode()).hexdigest()[:16]


def ruleset(table: str, arp_rate: int) -> str:
    """The table's declaration: counters, sets and chains, without elements."""
    return _RULESET.format(table=table, rate=arp_rate, signature=signature(table, arp_rate))


@dataclass(frozen=True)
class TableState:
    """What the table holds, as plain elements (comments included, so a changed tenant counts)."""

    exists: bool = False
    signature: str | None = None
    ports: frozenset[tuple[str, str]] = frozenset()
    macs: frozenset[tuple[str, str]] = frozenset()
    bindings: frozenset[tuple[str, str, str, str]] = frozenset()
    arp_rate: int | None = field(default=None, compare=False)  # read from the rules; the signature covers it
    counters: dict[str, int] = field(default_factory=dict, compare=False)

    def elements(self) -> dict[str, frozenset[tuple[str, ...]]]:
        return {"ports": self.ports, "macs": self.macs, "bindings": self.bindings}


def _binding_comment(binding: Binding) -> str:
    parts = ["tenant=%s" % binding.tenant]
    if binding.network:
        parts.append("network=%s" % binding.network)
    if binding.vlan is not None:
        parts.append("vlan=%d" % binding.vlan)
    return " ".join(parts)


def state_for(config: LockConfig, table: str) -> TableState:
    """The table that enforces ``config``."""
    return TableState(
        exists=True,
        signature=signature(table, config.arp_rate),
        ports=frozenset((b.port, "tenant=%s" % b.tenant) for b in config.bindings),
        macs=frozenset((b.port, str(b.mac)) for b in config.bindings),
        bindings=frozenset((b.port, str(b.mac), str(b.ip), _binding_comment(b)) for b in config.bindings),
    )


def parse_listing(text: str, table: str) -> TableState:
    """Table state from ``nft -j list table bridge <table>``."""
    try:
        objects = json.loads(text)["nftables"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError("not the JSON of `nft -j list table`: %s" % exc) from exc
    found = False
    sig = None
    rate = None
    sets: dict[str, list[Any]] = {"ports": [], "macs": [], "bindings": []}
    counters: dict[str, int] = {}
    for obj in objects:
        kind, body = next(iter(obj.items()))
        if not isinstance(body, dict) or body.get("family", "bridge") != "bridge":
            continue
        if kind == "table" and body.get("name") == table:
            found = True
        elif body.get("table") != table:
            continue
        elif kind == "set" and body.get("name") in sets:
            sets[body["name"]] = [_element(e) for e in body.get("elem", [])]
        elif kind == "counter":
            counters[body["name"]] = int(body.get("packets", 0))
        elif kind == "rule" and body.get("chain") == "prerouting":
            comment = body.get("comment") or ""
            if comment.startswith(SIGNATURE_PREFIX):
                sig = comment
        elif kind == "rule" and body.get("chain") == "arp_check":
            rate = _limit_rate(body.get("expr", [])) or rate
    if not found:
        return TableState()
    return TableState(
        exists=True,
        signature=sig,
        ports=frozenset((str(v[0]), c) for v, c in sets["ports"]),
        macs=frozenset((str(v[0]), str(v[1]).lower()) for v, c in sets["macs"]),
        bindings=frozenset((str(v[0]), str(v[1]).lower(), str(v[2]), c) for v, c in sets["bindings"]),
        arp_rate=rate,
        counters=counters,
    )


def _limit_rate(expr: list[Any]) -> int | None:
    """The packets-per-second of the ``update @arp_rate { ... limit rate over N/second }`` statement."""
    for statement in expr:
        for inner in (statement.get("set") or {}).get("stmt", []) if isinstance(statement, dict) else []:
            limit = inner.get("limit") if isinstance(inner, dict) else None
            if limit and limit.get("per") == "second":
                return int(limit["rate"])
    return None


def _element(item: Any) -> tuple[list[Any], str]:
    """(values, comment) of one set element in nft's JSON (bare value, concat, or elem with comment)."""
    comment = ""
    if isinstance(item, dict) and "elem" in item:
        comment = item["elem"].get("comment", "")
        item = item["elem"]["val"]
    if isinstance(item, dict) and "concat" in item:
        return list(item["concat"]), comment
    return [item], comment


def to_config(state: TableState) -> LockConfig:
    """The bindings a table holds (its ``bindings`` set with the comments' tenant/network/VLAN)."""
    bindings = []
    for port, mac, ip, comment in state.bindings:
        meta = dict(_COMMENT_RE.findall(comment))
        vlan = meta.get("vlan")
        bindings.append(
            Binding(
                port=port,
                mac=mac,
                ip=ip,
                tenant=meta.get("tenant"),
                network=meta.get("network"),
                vlan=int(vlan) if vlan and vlan.isdigit() else None,
            )
        )
    if state.arp_rate is None:
        return LockConfig(bindings=tuple(bindings))
    return LockConfig(bindings=tuple(bindings), arp_rate=state.arp_rate)


def _quote(value: str) -> str:
    return '"%s"' % value.replace('"', "")


def _format(set_name: str, element: tuple[str, ...]) -> str:
    if set_name == "ports":
        return "%s comment %s" % (_quote(element[0]), _quote(element[1]))
    if set_name == "macs":
        return "%s . %s" % (_quote(element[0]), element[1])
    return "%s . %s . %s comment %s" % (_quote(element[0]), element[1], element[2], _quote(element[3]))


def script(current: TableState, target: TableState | None, table: str, arp_rate: int) -> list[str]:
    """``nft -f`` lines that turn ``current`` into ``target`` (``None``: no table), one transaction.

    Empty when nothing changes.
    """
    if target is None:
        return ["delete table bridge %s" % table] if current.exists else []
    lines: list[str] = []
    if not current.exists or current.signature != target.signature:
        # Rebuild: `add` then `delete` works whether or not the table exists.
        lines += ["add table bridge %s" % table, "delete table bridge %s" % table]
        lines += ruleset(table, arp_rate).splitlines()
        current = TableState(exists=True, signature=target.signature)
    have, want = current.elements(), target.elements()
    for set_name in ("bindings", "macs", "ports"):  # delete in the reverse order of adding
        gone = sorted(have[set_name] - want[set_name])
        if gone:
            keys = sorted({_format(set_name, e).split(" comment ")[0] for e in gone})
            lines.append("delete element bridge %s %s { %s }" % (table, set_name, ", ".join(keys)))
    for set_name in ("ports", "macs", "bindings"):
        new = sorted(want[set_name] - have[set_name])
        if new:
            items = ", ".join(_format(set_name, e) for e in new)
            lines.append("add element bridge %s %s { %s }" % (table, set_name, items))
    return lines


@dataclass(frozen=True)
class Plan:
    lines: list[str]
    before: LockConfig
    after: LockConfig
    target: TableState | None


def plan(current: TableState, want: LockConfig, state: str, table: str) -> Plan:
    """What ``state`` does to the table (``deleted`` with nothing given removes the table).

    Raises :class:`BindingError` when the result would put one MAC or IP on two ports.
    """
    before = to_config(current)
    if state == "deleted" and not current.exists:
        return Plan([], before, before, None)
    if state == "deleted" and not (want.bindings or want.tenants):
        return Plan(script(current, None, table, want.arp_rate), before, LockConfig(), None)
    after = desired(before, want, state)
    if state == "deleted":
        # deleting takes elements out and leaves the rules as they are
        target = replace(state_for(after, table), signature=current.signature or signature(table, after.arp_rate))
    else:
        check(after)
        target = state_for(after, table)
    return Plan(script(current, target, table, after.arp_rate), before, after, target)


def render(config: LockConfig, table: str) -> list[str]:
    """The whole ``nft -f`` script for ``config`` on a host without the table (state ``rendered``)."""
    check(config)
    return script(TableState(), state_for(config, table), table, config.arp_rate)
