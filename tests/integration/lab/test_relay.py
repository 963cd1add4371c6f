"""The lab relay: a container-reachable address on each simulator's own port, TLS end to end."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from tenantry.lab import Endpoint, Simulator

pytestmark = pytest.mark.integration


def lab(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tenantry.lab", "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_relay_reaches_a_simulator_from_another_address(lab_binary: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Simulator(lab_binary) as simulator:
        endpoint: Endpoint = simulator.start("esx", state, "esx-relayed")
        (state / "esx").mkdir(parents=True, exist_ok=True)
        (state / "esx" / "relayed.json").write_text(json.dumps(endpoint.to_json()))
        # 127.0.0.2 stands in for the podman network's gateway: another address of this machine.
        up = lab(state, "relay-up", "--listen-host", "127.0.0.2")
        assert up.returncode == 0 and up.stdout.startswith("changed"), up.stderr
        try:
            again = lab(state, "relay-up", "--listen-host", "127.0.0.2")
            assert again.stdout.startswith("unchanged")
            ctx = ssl.create_default_context(cafile=str(endpoint.ca_file))
            ctx.check_hostname = False  # the certificate names 127.0.0.1; the relay passes TLS through
            with (
                socket.create_connection(("127.0.0.2", endpoint.port), timeout=10) as raw,
                ctx.wrap_socket(raw) as tls,
            ):
                tls.sendall(b"GET /sdk/vimServiceVersions.xml HTTP/1.0\r\nHost: x\r\n\r\n")
                answer = tls.recv(4096)
            assert answer.startswith(b"HTTP/1.0 200") or answer.startswith(b"HTTP/1.1 200"), answer[:100]
        finally:
            down = lab(state, "relay-down")
            assert down.stdout.startswith("changed")
        with pytest.raises(OSError), socket.create_connection(("127.0.0.2", endpoint.port), timeout=2):
            pass


def test_production_portgroups_stand_in_is_idempotent(vcenter: Endpoint, tmp_path: Path, vsphere_si: object) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "vcenter.json").write_text(json.dumps(vcenter.to_json()))
    args = ("prod-portgroups", "--portgroup=tenant-lbq-vlan3901:3901", "--portgroup=tenant-lbq-vlan3902:3902")
    first, second = lab(state, *args), lab(state, *args)
    assert first.stdout.startswith("changed") and second.stdout.startswith("unchanged"), first.stderr
    from pyVmomi import vim

    content = vsphere_si.RetrieveContent()  # type: ignore[attr-defined]
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
    hosts = [h for h in view.view if h.parent.name == "production"]
    view.Destroy()
    for host in hosts:
        found = {pg.spec.name: pg.spec.vlanId for pg in host.config.network.portgroup}
        assert found["tenant-lbq-vlan3901"] == 3901 and found["tenant-lbq-vlan3902"] == 3902
