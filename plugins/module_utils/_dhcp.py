# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""DHCP reservations for the static MACs of nested targets: validation and rendering for dnsmasq and ISC Kea.

The pool is reservation-only: a MAC without a reservation gets no address.  Input is plain data
(``{hostname, mac, ip}`` per target plus server settings); :func:`validate` raises
:class:`ReservationError` listing every problem, each naming the host(s) concerned.  Used by the
``tenantry.msp.dhcp_*`` filters and the ``dhcp_reservations`` role; knows nothing of Ansible.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._switch.bindings import is_unicast_mac, normalize_mac

try:
    from netaddr import AddrFormatError, IPAddress, IPNetwork

    HAS_NETADDR = True
except ImportError:  # pragma: no cover - the filters raise a clear error instead
    HAS_NETADDR = False

_HOSTNAME_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.:@+-]{1,15}$")
MIN_LEASE_TIME = 120  # dnsmasq refuses shorter leases


class ReservationError(ValueError):
    def __init__(self, errors: Iterable[str]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


@dataclass(frozen=True, order=True)
class Reservation:
    ip: str
    mac: str
    hostname: str

    def as_dict(self) -> dict[str, str]:
        return {"hostname": self.hostname, "mac": self.mac, "ip": self.ip}


@dataclass(frozen=True)
class Settings:
    interface: str
    subnet: str
    gateway: str | None = None
    dns_servers: tuple[str, ...] = ()
    domain: str | None = None
    lease_time: int = 3600
    lease_file: str | None = None
    control_socket: str | None = None  # Kea only

    @property
    def netmask(self) -> str:
        return str(IPNetwork(self.subnet).netmask)

    @property
    def network(self) -> str:
        return str(IPNetwork(self.subnet).network)


def validate(
    reservations: Iterable[Mapping[str, Any]], settings: Mapping[str, Any]
) -> tuple[list[Reservation], Settings]:
    """Normalised reservations (sorted by IP) and settings, or :class:`ReservationError`."""
    if not HAS_NETADDR:
        raise ReservationError(["the Python library netaddr is required on the controller"])
    errors: list[str] = []
    conf = _settings(settings, errors)
    net = IPNetwork(conf.subnet) if conf else None
    reserved: list[Reservation] = []
    by_mac: dict[str, str] = {}
    by_ip: dict[str, str] = {}
    by_name: set[str] = set()
    for index, item in enumerate(reservations or []):
        name = str(item.get("hostname") or "")
        label = name or "#%d" % (index + 1)
        own: list[str] = []
        if not _HOSTNAME_RE.match(name):
            own.append("hostname %r is not a valid host name" % name)
        mac = _mac(item.get("mac"), own)
        ip = _ip(item.get("ip"), own)
        if ip and net is not None:
            address = IPAddress(ip)
            if address not in net:
                own.append("ip %s is outside the subnet %s" % (ip, conf.subnet if conf else "?"))
            elif net.prefixlen < 31 and address in (net.network, net.broadcast):
                own.append("ip %s is the network or broadcast address of %s" % (ip, net.cidr))
            elif conf and ip == conf.gateway:
                own.append("ip %s is the gateway" % ip)
        if name.lower() in by_name:
            own.append("hostname is given twice")
        by_name.add(name.lower())
        if mac:
            if mac in by_mac:
                own.append("MAC %s is already reserved for %s" % (mac, by_mac[mac]))
            by_mac.setdefault(mac, label)
        if ip:
            if ip in by_ip:
                own.append("ip %s is already reserved for %s" % (ip, by_ip[ip]))
            by_ip.setdefault(ip, label)
        errors += ["reservation %s: %s" % (label, problem) for problem in own]
        if not own and mac and ip:
            reserved.append(Reservation(ip=ip, mac=mac, hostname=name))
    if errors or conf is None:
        raise ReservationError(errors)
    return sorted(reserved, key=lambda r: IPAddress(r.ip)), conf


def _settings(raw: Mapping[str, Any], errors: list[str]) -> Settings | None:
    interface = str(raw.get("interface") or "")
    if not _IFNAME_RE.match(interface):
        errors.append("interface %r is not a Linux interface name" % interface)
    subnet_text = str(raw.get("subnet") or "")
    try:
        subnet = IPNetwork(subnet_text)
        if subnet.version != 4 or "/" not in subnet_text:
            raise ValueError(subnet_text)
        if subnet.ip != subnet.network:
            errors.append("subnet %s has host bits set (the network is %s)" % (subnet_text, subnet.cidr))
    except (AddrFormatError, ValueError):
        errors.append("subnet %r is not an IPv4 network in CIDR notation" % subnet_text)
        return None
    gateway = _ip(raw.get("gateway"), errors, "gateway") if raw.get("gateway") else None
    if gateway and IPAddress(gateway) not in subnet:
        errors.append("gateway %s is outside the subnet %s" % (gateway, subnet.cidr))
    dns = tuple(d for d in (_ip(s, errors, "dns server") for s in raw.get("dns_servers") or []) if d)
    lease_time = raw.get("lease_time", 3600)
    if isinstance(lease_time, str) and lease_time.strip().isdigit():
        lease_time = int(lease_time)  # a templated value may arrive as text
    if isinstance(lease_time, bool) or not isinstance(lease_time, int) or lease_time < MIN_LEASE_TIME:
        errors.append("lease_time %r: give seconds, at least %d" % (lease_time, MIN_LEASE_TIME))
        lease_time = 3600
    domain = raw.get("domain") or None
    if domain and not _HOSTNAME_RE.match(str(domain)):
        errors.append("domain %r is not a valid domain name" % domain)
    return Settings(
        interface=interface,
        subnet=str(subnet.cidr),
        gateway=gateway,
        dns_servers=dns,
        domain=domain,
        lease_time=lease_time,
        lease_file=raw.get("lease_file") or None,
        control_socket=raw.get("control_socket") or None,
    )


def _mac(value: Any, errors: list[str]) -> str | None:
    try:
        text = normalize_mac(value)
    except ValueError as exc:
        errors.append("mac: %s" % exc)
        return None
    if not is_unicast_mac(text):
        errors.append("mac %s is not a unicast address" % text)
        return None
    return text


def _ip(value: Any, errors: list[str], what: str = "ip") -> str | None:
    try:
        address = IPAddress(str(value).strip())
        if address.version != 4:
            raise ValueError(value)
    except (AddrFormatError, ValueError, TypeError):
        errors.append("%s %r is not an IPv4 address" % (what, value))
        return None
    return str(address)


# --------------------------------------------------------------------------- dnsmasq


def dnsmasq_lines(
    reservations: Iterable[Mapping[str, Any]], settings: Mapping[str, Any], *, dns: bool = False
) -> list[str]:
    """dnsmasq configuration: DHCP on one interface, reservation-only (``static``) range, one
    ``dhcp-host`` per reservation.  ``dns=False`` turns dnsmasq's DNS server off (``port=0``)."""
    reserved, conf = validate(reservations, settings)
    lines = []
    if not dns:
        lines.append("port=0")
    lines += [
        "interface=%s" % conf.interface,
        "bind-dynamic",
        "dhcp-authoritative",
        # static: only hosts with a dhcp-host line get an address
        "dhcp-range=set:tenantry,%s,static,%s,%ds" % (conf.network, conf.netmask, conf.lease_time),
    ]
    if conf.gateway:
        lines.append("dhcp-option=tag:tenantry,option:router,%s" % conf.gateway)
    if conf.dns_servers:
        lines.append("dhcp-option=tag:tenantry,option:dns-server,%s" % ",".join(conf.dns_servers))
    if conf.domain:
        lines.append("dhcp-option=tag:tenantry,option:domain-name,%s" % conf.domain)
    if conf.lease_file:
        lines.append("dhcp-leasefile=%s" % conf.lease_file)
    lines += ["dhcp-host=%s,%s,%s,%ds" % (r.mac, r.ip, r.hostname, conf.lease_time) for r in reserved]
    return lines


# --------------------------------------------------------------------------- ISC Kea


def kea_dhcp4_config(reservations: Iterable[Mapping[str, Any]], settings: Mapping[str, Any]) -> dict[str, Any]:
    """A complete ``kea-dhcp4`` configuration: one subnet without pools, reservations by hardware address."""
    reserved, conf = validate(reservations, settings)
    options: list[dict[str, Any]] = []
    if conf.gateway:
        options.append({"name": "routers", "data": conf.gateway})
    if conf.dns_servers:
        options.append({"name": "domain-name-servers", "data": ", ".join(conf.dns_servers)})
    if conf.domain:
        options.append({"name": "domain-name", "data": conf.domain})
    lease_db: dict[str, Any] = {"type": "memfile", "persist": True, "lfc-interval": 3600}
    if conf.lease_file:
        lease_db["name"] = conf.lease_file
    dhcp4: dict[str, Any] = {
        "interfaces-config": {"interfaces": [conf.interface], "dhcp-socket-type": "raw"},
        "lease-database": lease_db,
        "valid-lifetime": conf.lease_time,
        "renew-timer": conf.lease_time // 2,
        "rebind-timer": conf.lease_time * 7 // 8,
        "authoritative": True,
        "host-reservation-identifiers": ["hw-address"],
        "reservations-global": False,
        "reservations-in-subnet": True,
        "reservations-out-of-pool": True,
        "subnet4": [
            {
                "id": 1,
                "subnet": conf.subnet,
                "pools": [],
                "option-data": options,
                "reservations": [{"hw-address": r.mac, "ip-address": r.ip, "hostname": r.hostname} for r in reserved],
            }
        ],
        "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "stdout"}], "severity": "INFO"}],
    }
    if conf.control_socket:
        dhcp4["control-socket"] = {"socket-type": "unix", "socket-name": conf.control_socket}
    return {"Dhcp4": dhcp4}
