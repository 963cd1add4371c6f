"""A nested target's API as a real site has it: only on the address its management MAC leases.

``esx-up NAME --mgmt-ip IP`` starts two processes for the target NAME:

* the *boot agent*, in the target's network namespace: it asks for a DHCP lease on eth0 (the target's
  management MAC) once a second until the lab's dnsmasq answers, puts the leased address on eth0,
  then becomes (``exec``) the ESX-mode simulator listening on ``<leased address>:443`` only;
* the *management relay*, standing in for the provider's management station: it listens on
  ``127.0.0.1:<port>`` of this machine and connects to ``IP:443`` from the lab switch's namespace
  (the management bridge), so the playbooks reach the target's API at its reserved address.

So the API answers only after the reservation is written, dnsmasq serves it and the target leased
it: an onboarding that waits for the API before it writes the reservation stalls, as on a real site.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tenantry.lab.build import binary_path
from tenantry.lab.errors import LabError
from tenantry.lab.procs import running_as
from tenantry.lab.relay import _pipe
from tenantry.lab.simulator import DEFAULT_USERNAME, PASSWORD_ENV, is_simulator

API_PORT = 443
_CLONE_NEWNET = 0x40000000

_UDHCPC_SCRIPT = """#!/bin/sh
# busybox udhcpc: put the leased address on the interface (what the ESXi's DHCP client does)
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    echo "$ip" > "$OUT" ;;
esac
exit 0
"""


def booting_or_running(pid: int) -> bool:
    """The boot agent still waits for its lease, or it became the simulator."""
    return is_simulator(pid) or running_as(pid, b"esx-boot")


def relay_alive(pid: int) -> bool:
    return running_as(pid, b"mgmt-relay-serve")


def kill(pid: int, check: Any, timeout: float = 10.0) -> None:
    """SIGTERM ``pid`` while ``check(pid)`` says it is ours, SIGKILL after ``timeout``."""
    if not check(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while check(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def start_relay(state_dir: Path, name: str, switch_ns: str, mgmt_ip: str) -> tuple[int, int]:
    """Start the management relay for one target; (pid, port on 127.0.0.1)."""
    ready = state_dir / "run" / f"mgmt-relay-{name}.port"
    ready.parent.mkdir(parents=True, exist_ok=True)
    ready.unlink(missing_ok=True)
    log_dir = state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "tenantry.lab", "--state-dir", str(state_dir), "mgmt-relay-serve",
            "--netns", switch_ns, "--to", f"{mgmt_ip}:{API_PORT}", "--ready-file", str(ready)]  # fmt: skip
    with (log_dir / f"mgmt-relay-{name}.log").open("ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    for _ in range(100):
        if proc.poll() is not None:
            raise LabError(f"the management relay of {name} exited at start; see {log_dir}/mgmt-relay-{name}.log")
        with contextlib.suppress(OSError, ValueError):
            return proc.pid, int(ready.read_text())
        time.sleep(0.05)
    raise LabError(f"the management relay of {name} did not start; see {log_dir}/mgmt-relay-{name}.log")


def start_boot(
    state_dir: Path,
    name: str,
    target_ns: str,
    password: str,
    tls: Any,
    latency: str | None,
    vms: int | None,
) -> int:
    """Start the boot agent in the target's namespace; its pid (the simulator's, once it leased)."""
    binary = binary_path()
    if not binary.exists():
        raise LabError(f"{binary} is missing: run 'python -m tenantry.lab build'")
    log = state_dir / "logs" / f"esx-{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    (state_dir / "nfs").mkdir(parents=True, exist_ok=True)
    argv = ["ip", "netns", "exec", target_ns, sys.executable, "-m", "tenantry.lab", "--state-dir", str(state_dir),
            "esx-boot", name, "--tls-cert", str(tls.cert_file), "--tls-key", str(tls.key_file)]  # fmt: skip
    if latency:
        argv += ["--latency", latency]
    if vms is not None:
        argv += ["--vms", str(vms)]
    env = {**os.environ, PASSWORD_ENV: password}
    with log.open("ab") as log_file:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    return proc.pid


def boot(state_dir: Path, name: str, tls_cert: str, tls_key: str, latency: str | None, vms: int | None) -> None:
    """The boot agent (run inside the target's namespace): DHCP until leased, then exec the simulator."""
    script = state_dir / "run" / "udhcpc-boot.sh"
    script.parent.mkdir(parents=True, exist_ok=True)
    if not script.exists() or script.read_text() != _UDHCPC_SCRIPT:
        script.write_text(_UDHCPC_SCRIPT)
        script.chmod(0o755)
    out = state_dir / "run" / f"boot-lease-{name}"
    out.unlink(missing_ok=True)
    print(f"{time.strftime('%H:%M:%S')} {name}: asking DHCP for the management address", flush=True)
    while True:
        try:
            subprocess.run(
                ["busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "2", "-T", "1", "-s", str(script)],
                env={**os.environ, "OUT": str(out)},
                capture_output=True,
                timeout=30,
                check=False,
            )
        except subprocess.TimeoutExpired:
            # One attempt that never returned (seen in CI after 3-7 minutes of asking a DHCP server not
            # started yet, on a loaded machine): it is killed, and the next attempt starts afresh.
            print(f"{time.strftime('%H:%M:%S')} {name}: a DHCP attempt hung for 30 s; asking again", flush=True)
        if out.exists() and out.read_text().strip():
            break
        time.sleep(1)
    address = out.read_text().strip()
    print(f"{time.strftime('%H:%M:%S')} {name}: leased {address}; the API listens on {address}:{API_PORT}", flush=True)
    argv = [str(binary_path()), "-mode=esx", f"-listen={address}:{API_PORT}", f"-tls-cert={tls_cert}",
            f"-tls-key={tls_key}", f"-username={DEFAULT_USERNAME}",
            f"-ready-file={state_dir / 'run' / f'esx-{name}.ready'}", f"-nfs-root={state_dir / 'nfs'}"]  # fmt: skip
    if latency:
        argv.append(f"-latency={latency}")
    if vms is not None:
        argv.append(f"-vms={vms}")
    os.execv(argv[0], argv)


def _enter_netns(netns: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/run/netns/{netns}", "rb") as handle:
        if libc.setns(handle.fileno(), _CLONE_NEWNET) != 0:
            raise LabError(f"setns({netns}): {os.strerror(ctypes.get_errno())}")


async def _serve_mgmt(listener: socket.socket, host: str, port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
        except (TimeoutError, OSError):
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, sock=listener)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def serve_mgmt(netns: str, to: str, ready_file: Path) -> None:
    """Listen on 127.0.0.1 here, then connect to ``to`` (HOST:PORT) from inside ``netns``."""
    host, _, port = to.rpartition(":")
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    _enter_netns(netns)  # sockets created from now on (upstream connections) are in the switch namespace
    ready_file.write_text(str(listener.getsockname()[1]))
    asyncio.run(_serve_mgmt(listener, host, int(port)))


def read_extra(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data
