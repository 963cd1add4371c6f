"""Benchmark: Direct Connect tunnel throughput as a ratio to plain loopback TCP, in the same run.

Run:  .venv/bin/python tests/bench/services/bench_direct_connect.py [--mib 512]

A sink server counts bytes; one client streams ``--mib`` MiB to it, first
directly (plain loopback TCP), then through a Director tunnel port → TLS +
HTTP/2 CONNECT stream → the Transporter's Direct Connect port → the sink, and
(for comparison) through the uplink session.  Sender and sink are the same
blocking-socket code in both runs.  Prints figures; target ratio >= 0.5.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration" / "services"))

from services_harness import DirectorProc, TransporterProc, free_port, wait_for

CHUNK = 256 * 1024


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
        total = 0
        with conn:
            while n := conn.recv_into(buf):
                total += n
            conn.sendall(str(total).encode())

    threading.Thread(target=serve, daemon=True).start()
    return int(server.getsockname()[1]), stop


def send(port: int, mib: int) -> float:
    """MiB/s from first byte to the sink's byte count coming back."""
    payload = b"\xa5" * CHUNK
    total = mib * 1024 * 1024
    with socket.create_connection(("127.0.0.1", port)) as s:
        t0 = time.perf_counter()
        sent = 0
        while sent < total:
            s.sendall(payload)
            sent += len(payload)
        s.shutdown(socket.SHUT_WR)
        answer = b""
        while data := s.recv(64):
            answer += data
        elapsed = time.perf_counter() - t0
    if int(answer or b"0") != total:
        raise RuntimeError(f"sink got {answer!r} bytes, expected {total}")
    return mib / elapsed


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mib", type=int, default=512)
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-dc-"))
    sink_port, stop = sink_server()
    director = DirectorProc(root, seeds={"heartbeat_interval": 5})
    director.start()
    t = TransporterProc(root, "site")
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
        send(direct["port"], 16)  # warm up (dial, handshake)
        send(sink_port, 16)
        plain = send(sink_port, args.mib)
        tunnel = send(direct["port"], args.mib)
        via_uplink = send(uplink["port"], args.mib)
        plain2 = send(sink_port, args.mib)
        base = (plain + plain2) / 2
        print(f"plain loopback TCP:        {base:8.0f} MiB/s  (runs: {plain:.0f}, {plain2:.0f})")
        print(f"Direct Connect tunnel:     {tunnel:8.0f} MiB/s  ratio {tunnel / base:.2f}  (target >= 0.5)")
        print(f"tunnel over the uplink:    {via_uplink:8.0f} MiB/s  ratio {via_uplink / base:.2f}")
    finally:
        stop.set()
        t.stop()
        director.stop()


if __name__ == "__main__":
    main()
