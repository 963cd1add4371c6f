"""A lab instance's nested target for real: its API answers only once its management MAC leased the reservation."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ansible_collections.tenantry.msp.plugins.module_utils._dhcp import dnsmasq_lines
from tenantry.lab.cli import main
from tenantry.lab.instance import Instance
from tenantry.lab.network import MGMT_BRIDGE
from tenantry.lab.simulator import is_simulator
from tenantry.lab.target import booting_or_running, relay_alive

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(not (shutil.which("dnsmasq") and shutil.which("busybox")), reason="see lab/apt-packages.txt"),
]

MGMT_MAC = "00:50:56:00:0c:80"
MGMT_IP = "10.0.22.65"


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _api(endpoint: dict[str, object]) -> int | None:
    context = ssl.create_default_context(cafile=str(endpoint["ca_file"]))
    url = f"https://127.0.0.1:{endpoint['port']}/sdk/vimServiceVersions.xml"
    try:
        with urllib.request.urlopen(url, timeout=3, context=context) as response:
            return int(response.status)
    except OSError:
        return None


@pytest.fixture
def lab(lab_binary: Path, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A state directory and an instance name of its own (its namespaces are tlab-<name>*)."""
    name = "t" + secrets.token_hex(3)
    state = tmp_path / "state"
    yield state, name
    main(["--instance", name, "--state-dir", str(state), "down"])


def _cli(state: Path, name: str, *args: str, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["--instance", name, "--state-dir", str(state), *args])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def test_instance_names() -> None:
    default = Instance("default", Path("/repo"))
    assert (default.state_dir, default.prefix, default.container_prefix, default.vcenter_port) == (
        Path("/repo/.lab/state"),
        "tenantry-lab",
        "",
        18443,
    )
    ci = Instance("ci", Path("/repo"))
    assert (ci.state_dir, ci.prefix, ci.container_prefix, ci.vcenter_port) == (
        Path("/repo/.lab/instances/ci/state"),
        "tlab-ci",
        "tlab-ci-",
        0,
    )
    with pytest.raises(Exception, match="lab instance name 'CI/x'"):
        Instance("CI/x", Path("/repo"))


def test_api_only_behind_the_lease(lab: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state, name = lab
    prefix = f"tlab-{name}"
    _cli(state, name, "net-up", "--gateway", "10.0.16.1/20", capsys=capsys)
    _cli(state, name, "net-plug", "acme-target-01", "--port", "vt-acme-1", "--mgmt-mac", MGMT_MAC,
         "--tenant-mac", "00:50:56:00:0c:81", "--tenant-ip", "10.210.0.100/24", capsys=capsys)  # fmt: skip
    assert {prefix, f"{prefix}-t-acme-target-01"} <= _namespaces()

    out = _cli(state, name, "esx-up", "acme-target-01", f"--mgmt-ip={MGMT_IP}", capsys=capsys)
    assert out.startswith("started") and "booting (no DHCP lease yet)" in out
    endpoint = json.loads((state / "esx" / "acme-target-01.json").read_text())
    assert endpoint["hostname"] == "127.0.0.1" and endpoint["mgmt_ip"] == MGMT_IP
    assert _cli(state, name, "esx-up", "acme-target-01", f"--mgmt-ip={MGMT_IP}", capsys=capsys).startswith(
        "already running"
    )
    # No reservation served yet: nothing answers at the target's address.
    assert _api(endpoint) is None
    assert not is_simulator(endpoint["pid"]) and booting_or_running(endpoint["pid"])

    conf = tmp_path / "dnsmasq.conf"
    settings = {"interface": MGMT_BRIDGE, "subnet": "10.0.16.0/20", "lease_file": str(tmp_path / "leases")}
    reservation = [{"hostname": "acme-target-01", "mac": MGMT_MAC, "ip": MGMT_IP}]
    conf.write_text("\n".join(dnsmasq_lines(reservation, settings)) + "\n")
    _cli(state, name, "dhcp-up", f"--conf={conf}", capsys=capsys)
    for _ in range(40):
        if _api(endpoint) == 200:
            break
        subprocess.run(["sleep", "0.5"], check=True)
    assert _api(endpoint) == 200
    assert is_simulator(endpoint["pid"])  # the boot agent became the simulator (same pid)
    listening = subprocess.run(
        ["ip", "netns", "exec", f"{prefix}-t-acme-target-01", "ss", "-Hltn"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert f"{MGMT_IP}:443" in listening and "0.0.0.0:443" not in listening and "*:443" not in listening
    assert "running" in _cli(state, name, "status", capsys=capsys)

    # The reservation removed and dnsmasq restarted: the target gets no lease any more.
    conf.write_text("\n".join(dnsmasq_lines([], settings)) + "\n")
    _cli(state, name, "dhcp-up", f"--conf={conf}", capsys=capsys)
    assert main(["--instance", name, "--state-dir", str(state), "dhcp-lease", "acme-target-01"]) == 3
    assert "no lease" in capsys.readouterr().out

    out = _cli(state, name, "down", capsys=capsys)
    assert f"lab instance {name}: stopped" in out and "kept in" in out
    assert not booting_or_running(endpoint["pid"]) and not relay_alive(endpoint["relay_pid"])
    assert not {n for n in _namespaces() if n.startswith(prefix)}
