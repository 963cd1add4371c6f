"""Hostile clients for the abuse tests and the abuse benchmark: real sockets on loopback, from many
source addresses (127.0.0.0/8 is all loopback, so each attacker address is a distinct "host").

Everything here is an attacker's view: what it can send, and whether the Director kept the
connection.  The Director under attack is a real process (services_harness.DirectorProc).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import struct
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import h2.config
import h2.connection
import h2.events

T = TypeVar("T")


class Attacker:
    """An event loop in a thread that holds the hostile connections while the test goes on."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @contextlib.contextmanager
    def running(self) -> Iterator[Attacker]:
        self._thread.start()
        try:
            yield self
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)


# The first 5 bytes of a TLS ClientHello record that announces 512 more bytes (never sent).
HELLO_PREFIX = b"\x16\x03\x01\x02\x00"


def sources(count: int, subnet: int = 2) -> list[str]:
    """``count`` loopback source addresses 127.0.<subnet>.1 … (never 127.0.0.1, the bystander's)."""
    return [f"127.0.{subnet + i // 250}.{1 + i % 250}" for i in range(count)]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Crowd:
    """Connections an attacker holds open."""

    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    readers: list[asyncio.StreamReader] = field(default_factory=list)
    refused: int = 0  # reset or closed before they could start

    def open_count(self) -> int:
        return sum(1 for r, w in zip(self.readers, self.writers, strict=True) if not (r.at_eof() or w.is_closing()))

    def close(self) -> None:
        for w in self.writers:
            w.transport.abort()
        self.writers.clear()
        self.readers.clear()


async def _open(
    host: str, port: int, source: str, ctx: ssl.SSLContext | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(
        asyncio.open_connection(host, port, local_addr=(source, 0), ssl=ctx, server_hostname=host if ctx else None),
        15,
    )


async def half_open(host: str, port: int, addrs: list[str], per_source: int, crowd: Crowd) -> None:
    """Connect and send the first 5 bytes of a ClientHello, then nothing."""

    async def one(source: str) -> None:
        try:
            reader, writer = await _open(host, port, source, None)
            writer.write(HELLO_PREFIX)
            await writer.drain()
        except (OSError, TimeoutError):
            crowd.refused += 1
            return
        crowd.readers.append(reader)
        crowd.writers.append(writer)

    await asyncio.gather(*(one(s) for s in addrs for _ in range(per_source)))


async def slow_headers(
    host: str, port: int, addrs: list[str], per_source: int, ctx: ssl.SSLContext, crowd: Crowd, burst: int = 64
) -> None:
    """Complete TLS, then send the first bytes of a request and nothing more (slowloris)."""
    sem = asyncio.Semaphore(burst)

    async def one(source: str) -> None:
        async with sem:
            try:
                reader, writer = await _open(host, port, source, ctx)
                writer.write(b"GET /api/v1/health HTTP/1.1\r\nHost: d\r\nX-Slow: ")
                await writer.drain()
            except (OSError, TimeoutError, ssl.SSLError):
                crowd.refused += 1
                return
        crowd.readers.append(reader)
        crowd.writers.append(writer)

    await asyncio.gather(*(one(s) for s in addrs for _ in range(per_source)))


async def tls_only(host: str, port: int, addrs: list[str], per_source: int, ctx: ssl.SSLContext, crowd: Crowd) -> None:
    """Complete TLS and send nothing at all."""

    async def one(source: str) -> None:
        try:
            reader, writer = await _open(host, port, source, ctx)
        except (OSError, TimeoutError, ssl.SSLError):
            crowd.refused += 1
            return
        crowd.readers.append(reader)
        crowd.writers.append(writer)

    await asyncio.gather(*(one(s) for s in addrs for _ in range(per_source)))


async def trickle(crowd: Crowd, interval: float, rounds: int) -> None:
    """One more header byte on every slow connection every ``interval`` seconds."""
    for _ in range(rounds):
        await asyncio.sleep(interval)
        for w in crowd.writers:
            if not w.is_closing():
                with contextlib.suppress(Exception):
                    w.write(b"x")


def refused_before_tls(host: str, port: int, source: str, wait: float = 1.0) -> bool:
    """Connect from ``source`` and start a ClientHello: ``True`` when the server ended the connection
    without sending a single byte (refused before TLS), ``False`` when it kept waiting for the rest."""
    with socket.socket() as s:
        s.bind((source, 0))
        s.settimeout(wait)
        try:
            s.connect((host, port))
            s.sendall(HELLO_PREFIX)
            return s.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False


def timed_uplink_reconnect(host: str, port: int, state_dir: Path, timeout: float = 10.0) -> float:
    """Open an uplink session with a Transporter's certificate, as its reconnect would; seconds
    until the Director's first request (its settings push) arrives on the new session."""
    ctx = ssl.create_default_context(cafile=str(state_dir / "ca.crt"))
    ctx.check_hostname = False
    ctx.load_cert_chain(state_dir / "client.crt", state_dir / "client.key")
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=timeout) as raw, ctx.wrap_socket(raw) as s:
        conn.initiate_connection()
        s.sendall(conn.data_to_send())
        while time.monotonic() - started < timeout:
            data = s.recv(65536)
            if not data:
                raise ConnectionError("the Director closed the uplink")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    return time.monotonic() - started
            s.sendall(conn.data_to_send())
    raise TimeoutError("no request from the Director on the new session")


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


# ------------------------------------------------------------------------------------------ HTTP/2
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7, 0x9
END_STREAM, END_HEADERS = 0x1, 0x4
REFUSED_STREAM, ENHANCE_YOUR_CALM = 0x7, 0xB


def frames_of(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(type, flags, stream id, payload) of every whole frame in ``data``."""
    out = []
    while len(data) >= 9:
        length = int.from_bytes(data[:3], "big")
        if len(data) < 9 + length:
            break
        out.append((data[3], data[4], int.from_bytes(data[5:9], "big") & 0x7FFFFFFF, data[9 : 9 + length]))
        data = data[9 + length :]
    return out


def goaway_code(frames: list[tuple[int, int, int, bytes]]) -> int | None:
    for kind, _flags, _sid, payload in frames:
        if kind == GOAWAY and len(payload) >= 8:
            return int.from_bytes(payload[4:8], "big")
    return None


def drain(sock: ssl.SSLSocket, timeout: float = 10.0) -> bytes:
    """Everything the peer sends until it closes (or ``timeout``)."""
    sock.settimeout(timeout)
    chunks = []
    with contextlib.suppress(OSError, ssl.SSLError):
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def uplink_socket(host: str, port: int, state_dir: Path) -> ssl.SSLSocket:
    """A TLS connection to the uplink port with a Transporter's certificate (nothing sent yet)."""
    ctx = ssl.create_default_context(cafile=str(state_dir / "ca.crt"))
    ctx.check_hostname = False
    ctx.load_cert_chain(state_dir / "client.crt", state_dir / "client.key")
    return ctx.wrap_socket(socket.create_connection((host, port), timeout=10))


def fake_transporter(sock: ssl.SSLSocket, answers: dict[str, bytes], seconds: float) -> list[str]:
    """Serve the Director's requests on an uplink session for ``seconds`` like a Transporter would,
    answering ``answers[path]`` (200, JSON) and 404 otherwise; returns the paths requested."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        if not data:
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                path = dict(event.headers or [])[":path"]
                seen.append(path)
                body = answers.get(path, b'{"ok": true}' if path == "/v1/settings" else b"")
                status = "200" if body else "404"
                conn.send_headers(event.stream_id, [(":status", status), ("content-length", str(len(body)))])
                size = conn.max_outbound_frame_size
                for start in range(0, len(body), size):
                    conn.send_data(event.stream_id, body[start : start + size])
                conn.end_stream(event.stream_id)
        sock.sendall(conn.data_to_send())
    return seen
