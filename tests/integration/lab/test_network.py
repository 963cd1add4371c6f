"""The lab network for real: namespaces, bridges, veths with the targets' MACs, dnsmasq serving reservations."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ansible_collections.tenantry.msp.plugins.module_utils._dhcp import dnsmasq_lines
from tenantry.lab.network import MGMT_BRIDGE, LabNet

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(not (shutil.which("dnsmasq") and shutil.which("busybox")), reason="see lab/apt-packages.txt"),
]


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@pytest.fixture
def net(tmp_path: Path) -> Iterator[LabNet]:
    lab = LabNet(tmp_path / "net", prefix="tnl" + secrets.token_hex(3))
    (tmp_path / "net").mkdir()
    yield lab
    lab.down()


def test_switch_targets_and_reserved_dhcp(net: LabNet, tmp_path: Path) -> None:
    assert net.switch_up("10.0.16.1/20") is True
    assert net.switch_up("10.0.16.1/20") is False
    assert net.plug("acme-target-01", "vt-acme-1", "00:50:56:00:0c:80", "00:50:56:00:0c:81", "10.210.0.100/24")
    assert net.plug("rogue-01", "vt-rogue-1", "00:50:56:3f:00:01", "00:50:56:3f:00:02", "10.210.0.200/24")
    assert net.plug("acme-target-01", "vt-acme-1", "00:50:56:00:0c:80", "00:50:56:00:0c:81", "10.210.0.100/24") is False
    mac = subprocess.run(
        ["ip", "-n", net.target_ns("acme-target-01"), "-o", "link", "show", "eth1"], capture_output=True, text=True
    ).stdout
    assert "00:50:56:00:0c:81" in mac

    conf = tmp_path / "dnsmasq.conf"
    settings = {"interface": MGMT_BRIDGE, "subnet": "10.0.16.0/20", "lease_file": str(tmp_path / "leases")}
    lines = dnsmasq_lines([{"hostname": "acme-target-01", "mac": "00:50:56:00:0c:80", "ip": "10.0.22.65"}], settings)
    conf.write_text("\n".join(lines) + "\n")
    assert net.dhcp_up(conf) is True
    assert net.dhcp_up(conf) is False
    assert net.lease("acme-target-01") == "10.0.22.65"
    assert net.lease("rogue-01", timeout=2) is None  # reservation-only: an unknown MAC gets nothing

    # Another state dir (another lab, a test) never removes this network.
    LabNet(tmp_path / "elsewhere", prefix=net.switch_ns).down()
    assert net.switch_ns in namespaces() and net.lease("acme-target-01") == "10.0.22.65"

    # A switch namespace re-created under a running dnsmasq: dhcp_up starts it again in the new one.
    subprocess.run(["ip", "netns", "del", net.switch_ns], check=True)
    assert net.switch_up("10.0.16.1/20") is True
    assert net.plug("acme-target-01", "vt-acme-1", "00:50:56:00:0c:80", "00:50:56:00:0c:81", "10.210.0.100/24")
    assert net.dhcp_up(conf) is True
    assert net.lease("acme-target-01") == "10.0.22.65"

    net.down()
    assert not {n for n in namespaces() if n.startswith(net.switch_ns)}
