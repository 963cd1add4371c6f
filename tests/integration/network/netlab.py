"""A throw-away layer-2 lab: network namespaces, a bridge, veth pairs, and raw frames sent from inside.

Everything carries one unique tag and is removed by :meth:`NetLab.close` (namespaces take their
bridges and veths with them; processes started in them are killed first).  Frames are crafted with
scapy and sent on AF_PACKET sockets opened inside a namespace: the socket is created by a short-lived
thread that has joined the namespace with setns(2), so the test process itself never changes
namespace (Python 3.11 has no os.setns; ctypes calls libc's).
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


def why_not_available(*commands: str) -> str | None:
    """A reason to skip, or None when namespaces (and the given commands) are usable here."""
    if os.geteuid() != 0:
        return "needs root: network namespaces, bridges and nftables"
    for command in ("ip", *commands):
        if not shutil.which(command):
            return f"{command} is not installed (see lab/apt-packages.txt)"
    probe = f"tnprobe{os.getpid()}"
    if ip("netns", "add", probe, check=False).returncode != 0:
        return "`ip netns add` is not permitted here"
    ip("netns", "del", probe, check=False)
    return None


class NetLab:
    def __init__(self) -> None:
        self.tag = "tn" + secrets.token_hex(3)
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen[bytes]] = []

    # ------------------------------------------------------------------ topology
    def netns(self, name: str) -> str:
        full = f"{self.tag}-{name}"
        ip("netns", "add", full)
        self.namespaces.append(full)
        ip("-n", full, "link", "set", "lo", "up")
        return full

    def bridge(self, netns: str, name: str = "br0") -> str:
        ip("-n", netns, "link", "add", name, "type", "bridge")
        ip("-n", netns, "link", "set", name, "up")
        return name

    def plug(
        self,
        switch: str,
        bridge: str,
        port: str,
        host: str,
        *,
        mac: str,
        address: str | None = None,
        ifname: str = "eth0",
    ) -> None:
        """A veth from ``port`` on the bridge to ``ifname`` in namespace ``host``, with its MAC/address."""
        ip("-n", switch, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", host)
        ip("-n", switch, "link", "set", port, "master", bridge, "up")
        ip("-n", host, "link", "set", ifname, "address", mac)
        if address:
            ip("-n", host, "address", "add", address, "dev", ifname)
        ip("-n", host, "link", "set", ifname, "up")

    def start(
        self, netns: str, argv: Sequence[str], log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", netns, *argv], stdout=out, stderr=subprocess.STDOUT, env=env
            )
        self.processes.append(proc)
        return proc

    def run(self, netns: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, timeout=timeout)

    def close(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for netns in reversed(self.namespaces):
            ip("netns", "del", netns, check=False)
        self.namespaces.clear()

    def leftovers(self) -> list[str]:
        listed = ip("netns", "list", check=False).stdout.split()
        return [name for name in listed if name.startswith(self.tag)]

    # ------------------------------------------------------------------ frames
    def socket(self, netns: str, ifname: str = "eth0") -> socket.socket:
        """An AF_PACKET socket bound to ``ifname`` inside ``netns``."""
        made: dict[str, Any] = {}

        def inside() -> None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns")
                finally:
                    os.close(fd)
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                sock.bind((ifname, 0))
                made["socket"] = sock
            except OSError as exc:
                made["error"] = exc

        thread = threading.Thread(target=inside)
        thread.start()
        thread.join()
        if "error" in made:
            raise made["error"]
        return made["socket"]  # type: ignore[no-any-return]


def receive(sock: socket.socket, seconds: float, wanted: Callable[[bytes], bool]) -> list[bytes]:
    """Frames that arrive on ``sock`` (not sent by it) within ``seconds`` and satisfy ``wanted``."""
    found = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            frame, address = sock.recvfrom(65535)
        except TimeoutError:
            break
        if address[2] != PACKET_OUTGOING and wanted(frame):
            found.append(frame)
    return found


def drain(sock: socket.socket) -> None:
    sock.setblocking(False)
    try:
        while True:
            sock.recv(65535)
    except BlockingIOError:
        pass
    finally:
        sock.setblocking(True)


def nft_counters(netns: str, table: str) -> dict[str, int]:
    out = subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "-j", "list", "counters", "table", "bridge", table],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {o["counter"]["name"]: o["counter"]["packets"] for o in json.loads(out)["nftables"] if "counter" in o}


def nft_tables(netns: str) -> list[str]:
    out = subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "-j", "list", "tables"], capture_output=True, text=True, check=True
    ).stdout
    return [o["table"]["name"] for o in json.loads(out)["nftables"] if "table" in o]
