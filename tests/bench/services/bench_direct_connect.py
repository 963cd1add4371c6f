"""Benchmark: Direct Connect tunnel throughput against what an MSP would use instead.

Run:  .venv/bin/python tests/bench/services/bench_direct_connect.py [--mib 512] [--rounds 3]

One sender streams ``--mib`` MiB to one sink through each path below; the sink
counts the bytes and checksums them (CRC-32: it catches lost, doubled, reordered or
altered bytes at a fraction of SHA-256's CPU cost, which the sink would otherwise take
from the two cores the paths share) and answers ``count crc``, which the sender checks
against what it sent.  Sender and sink are the same blocking-socket
code for every path, and every path starts and ends on loopback:

* Direct Connect: the Director's tunnel port → TLS + HTTP/2 CONNECT authorisation
  → the Transporter's Direct Connect port → the sink;
* the same tunnel over the tenant's uplink session (for comparison);
* the peers an MSP would otherwise use: an ``ssh -L`` port forward with
  ``aes128-gcm@openssh.com`` and with OpenSSH's default cipher (a throwaway sshd on
  a loopback port, its own host key and authorized key in a temporary directory),
  and ``socat`` with OpenSSL at both ends (TLS on loopback);
* plain loopback TCP (what the sender and sink alone reach).

Each round measures every path once, in turn; the medians over ``--rounds`` are
compared.  Prints the ratio of Direct Connect to the best peer (target >= 1.0) and the
CPU seconds the relaying processes spent per run (the Director and the Transporter;
sshd and ssh; both socats), which a busy shared machine disturbs less than MiB/s.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration" / "services"))

from services_harness import DirectorProc, TransporterProc, free_port, wait_for

CHUNK = 256 * 1024
# One pseudo-random block repeated: incompressible enough for any path, and its SHA-256 is known.
BLOCK = random.Random(15).randbytes(CHUNK)


def sink_server() -> tuple[int, threading.Event]:
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.5)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=drain, args=(conn,), daemon=True).start()

    def drain(conn: socket.socket) -> None:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        crc = 0
        total = 0
        with conn:
            while n := conn.recv_into(buf):
                total += n
                crc = zlib.crc32(view[:n], crc)
            conn.sendall(f"{total} {crc:08x}".encode())

    threading.Thread(target=serve, daemon=True).start()
    return int(server.getsockname()[1]), stop


def expected(mib: int) -> str:
    crc = 0
    for _ in range(mib * 1024 * 1024 // CHUNK):
        crc = zlib.crc32(BLOCK, crc)
    return f"{mib * 1024 * 1024} {crc:08x}"


def send(port: int, mib: int, want: str) -> float:
    """MiB/s from the connection to the sink's verified byte count and hash coming back."""
    total = mib * 1024 * 1024
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as s:
        sent = 0
        while sent < total:
            s.sendall(BLOCK)
            sent += len(BLOCK)
        s.shutdown(socket.SHUT_WR)
        answer = b""
        while data := s.recv(256):
            answer += data
        elapsed = time.perf_counter() - t0
    if answer.decode() != want:
        raise RuntimeError(f"port {port}: the sink got {answer!r}, expected {want!r}")
    return mib / elapsed


def tree_cpu(roots: list[int]) -> float:
    """CPU seconds (user + system, reaped children included) of ``roots`` and all their descendants."""
    hz = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry)] = (int(fields[1]), sum(int(x) for x in fields[11:15]) / hz)
    chosen = {pid for pid in roots if pid in stats}
    grew = True
    while grew:
        more = {pid for pid, (ppid, _cpu) in stats.items() if ppid in chosen} - chosen
        chosen |= more
        grew = bool(more)
    return sum(stats[pid][1] for pid in chosen)


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class Peers:
    """sshd, ssh -L and socat, all on loopback, all in one temporary directory."""

    def __init__(self, root: Path, sink_port: int) -> None:
        self.root = root
        self.sink_port = sink_port
        self.procs: list[subprocess.Popen[bytes]] = []
        self.log = (root / "peers.log").open("ab")
        self.last = 0
        self.sshd_pid = 0
        self.socat_pids: list[int] = []

    def _spawn(self, args: list[str], port: int, what: str) -> int:
        proc = subprocess.Popen(args, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        self.last = proc.pid

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"{what} exited with {proc.returncode}; see {self.root / 'peers.log'}")
            return listening(port)

        wait_for(up, 20, what)
        return port

    def sshd(self) -> int:
        d = self.root / "ssh"
        d.mkdir(mode=0o700)
        for name in ("host_key", "user_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
        shutil.copy(d / "user_key.pub", d / "authorized_keys")
        port = free_port()
        (d / "sshd_config").write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
            f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile {d / 'sshd.pid'}\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "AllowTcpForwarding yes\nPermitRootLogin prohibit-password\n"
        )
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
        self.ssh_dir = d
        self.ssh_port = self._spawn(["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")], port, "sshd")
        self.sshd_pid = self.last
        return port

    def ssh_forward(self, cipher: str | None) -> int:
        d = self.ssh_dir
        port = free_port()
        args = ["ssh", "-F", "/dev/null", "-N", "-i", str(d / "user_key"), "-p", str(self.ssh_port)]
        args += ["-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={d / 'known_hosts'}"]
        args += ["-o", "ExitOnForwardFailure=yes", "-o", "BatchMode=yes", "-o", "Compression=no"]
        if cipher:
            args += ["-c", cipher]
        args += ["-L", f"127.0.0.1:{port}:127.0.0.1:{self.sink_port}", f"{os.environ.get('USER', 'root')}@127.0.0.1"]
        return self._spawn(args, port, f"ssh -L ({cipher or 'default cipher'})")

    def socat(self) -> int:
        from tenantry.common import pki

        ca = pki.new_ca("bench socat CA")
        pair = pki.issue(ca, "127.0.0.1", ips=["127.0.0.1"], server=True)
        cert, key, ca_file = self.root / "socat.crt", self.root / "socat.key", self.root / "socat-ca.crt"
        pki.write_keypair(pair, cert, key)
        ca_file.write_bytes(ca.cert_pem())
        tls_port, port = free_port(), free_port()
        self.socat_pids = []
        self._spawn(
            [
                "socat",
                f"OPENSSL-LISTEN:{tls_port},bind=127.0.0.1,reuseaddr,fork,cert={cert},key={key},verify=0",
                f"TCP:127.0.0.1:{self.sink_port}",
            ],
            tls_port,
            "socat OpenSSL server",
        )
        self.socat_pids.append(self.last)
        port = self._spawn(
            [
                "socat",
                f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
                f"OPENSSL:127.0.0.1:{tls_port},cafile={ca_file},commonname=127.0.0.1",
            ],
            port,
            "socat OpenSSL client",
        )
        self.socat_pids.append(self.last)
        return port

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mib", type=int, default=512)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-dc-"))
    sink_port, stop = sink_server()
    want = expected(args.mib)
    director = DirectorProc(root, seeds={"heartbeat_interval": 5})
    director.start()
    t = TransporterProc(root, "site")
    peers = Peers(root, sink_port)
    try:
        dc_port = free_port()
        created = director.create_tenant("site", direct_connect={"address": f"127.0.0.1:{dc_port}"})
        assert t.enroll(director, created["credentials"]["enrollment_key"]).returncode == 0
        t.start(
            "--direct-connect",
            "--direct-connect-host",
            "127.0.0.1",
            "--direct-connect-port",
            str(dc_port),
            "--allow",
            f"127.0.0.1:{sink_port}",
        )
        wait_for(lambda: director.online("site"), 30, "site online")
        direct = director.api(
            "POST", "/api/v1/tenants/site/tunnels", {"target": f"127.0.0.1:{sink_port}", "via": "direct"}
        )
        uplink = director.api("POST", "/api/v1/tenants/site/tunnels", {"target": f"127.0.0.1:{sink_port}"})
        peers.sshd()
        assert director.proc is not None and t.proc is not None
        ours = [director.proc.pid, t.proc.pid]
        paths: dict[str, int] = {
            "Direct Connect tunnel": direct["port"],
            "tunnel over the uplink": uplink["port"],
            "ssh -L aes128-gcm": peers.ssh_forward("aes128-gcm@openssh.com"),
        }
        # The processes that relay each path's bytes (the sender and sink are the same for all).
        relays: dict[str, list[int]] = {
            "Direct Connect tunnel": ours,
            "tunnel over the uplink": ours,
            "ssh -L aes128-gcm": [peers.sshd_pid, peers.last],
        }
        paths["ssh -L default cipher"] = peers.ssh_forward(None)
        relays["ssh -L default cipher"] = [peers.sshd_pid, peers.last]
        paths["socat OpenSSL"] = peers.socat()
        relays["socat OpenSSL"] = peers.socat_pids
        paths["plain loopback TCP"] = sink_port
        relays["plain loopback TCP"] = []
        small = expected(16)
        for port in paths.values():
            send(port, 16, small)  # warm up: dial, handshakes, key exchange
        runs: dict[str, list[float]] = {name: [] for name in paths}
        cpu: dict[str, list[float]] = {name: [] for name in paths}
        print(f"{args.mib} MiB per run, {args.rounds} rounds; load average {_load()} at the start", flush=True)
        for rnd in range(args.rounds):
            for name, port in paths.items():
                before = tree_cpu(relays[name])
                runs[name].append(send(port, args.mib, want))
                cpu[name].append(tree_cpu(relays[name]) - before)
            print(f"  round {rnd + 1}: " + ", ".join(f"{n} {v[-1]:.0f}" for n, v in runs.items()), flush=True)
        med: Callable[[str], float] = lambda name: statistics.median(runs[name])  # noqa: E731
        cpu_med: Callable[[str], float] = lambda name: statistics.median(cpu[name])  # noqa: E731
        peer_names = ["ssh -L aes128-gcm", "ssh -L default cipher", "socat OpenSSL"]
        best = max(peer_names, key=med)
        print(f"medians over {args.rounds} rounds of {args.mib} MiB (byte count and CRC-32 verified at the sink):")
        for name in paths:
            spread = ", ".join(f"{v:.0f}" for v in runs[name])
            print(f"  {name:24s} {med(name):8.0f} MiB/s  (runs: {spread});  relay CPU {cpu_med(name):5.2f} s per run")
        dc = med("Direct Connect tunnel")
        print(f"Direct Connect / best peer ({best}): {dc / med(best):.2f}x  (target >= 1.0)")
        print(f"uplink tunnel / best peer: {med('tunnel over the uplink') / med(best):.2f}x")
        dc_cpu, best_cpu = cpu_med("Direct Connect tunnel"), cpu_med(best)
        print(f"relay CPU seconds per run, Direct Connect / {best}: {dc_cpu:.2f} / {best_cpu:.2f}")
        print(f"load average {_load()} at the end")
    finally:
        stop.set()
        peers.stop()
        t.stop()
        director.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
