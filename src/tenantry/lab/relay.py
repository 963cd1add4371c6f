"""A TCP relay that lets the lab's containers reach the simulators, which listen on 127.0.0.1 only.

The Director runs in a podman container; its jobs (the console's failover buttons) call the provider
vCenter and the nested targets' APIs.  ``python -m tenantry.lab relay-up --listen-host GATEWAY``
listens on the lab network's gateway address (this machine, as the containers see it) on each recorded
simulator's own port and relays every connection, bytes untouched (TLS end to end), to 127.0.0.1.
Only the lab network's containers reach the gateway address.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from tenantry.lab.errors import LabError
from tenantry.lab.procs import running_as

_CHUNK = 65536


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


async def _serve(listen_host: str, ports: Sequence[int], target_host: str) -> None:
    async def relay(port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(target_host, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def handler(port: int) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await relay(port, reader, writer)

        return handle

    servers = [await asyncio.start_server(handler(port), listen_host, port, reuse_address=True) for port in ports]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def serve(listen_host: str, ports: Sequence[int], target_host: str = "127.0.0.1") -> None:
    asyncio.run(_serve(listen_host, ports, target_host))


def _state(run_dir: Path) -> Path:
    return run_dir / "relay.json"


def _alive(pid: int) -> bool:
    return running_as(pid, b"relay-serve")


def down(run_dir: Path) -> bool:
    """Stop the recorded relay; whether one was running."""
    path = _state(run_dir)
    try:
        pid = int(json.loads(path.read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return False
    path.unlink(missing_ok=True)
    if not _alive(pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    return True


def up(run_dir: Path, log_dir: Path, listen_host: str, ports: Sequence[int], state_dir: Path) -> bool:
    """Start the relay for ``ports`` on ``listen_host`` unless the same one runs; whether it changed."""
    wanted_ports = sorted(set(ports))
    wanted: dict[str, object] = {"host": listen_host, "ports": wanted_ports}
    path = _state(run_dir)
    with contextlib.suppress(OSError, ValueError):
        current = json.loads(path.read_text())
        if {"host": current.get("host"), "ports": current.get("ports")} == wanted and _alive(int(current["pid"])):
            return False
    down(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "tenantry.lab",
        "--state-dir",
        str(state_dir),
        "relay-serve",
        "--listen-host",
        listen_host,
    ]
    for port in wanted_ports:
        argv += ["--port", str(port)]
    with (log_dir / "relay.log").open("ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    path.write_text(json.dumps({"pid": proc.pid, **wanted}) + "\n")
    # The ports are bound when the relay answers; give it a moment and report a failure to bind.
    for _ in range(50):
        if proc.poll() is not None:
            raise LabError(f"the relay on {listen_host} exited at start; see {log_dir / 'relay.log'}")
        if all(_listening(listen_host, port) for port in wanted_ports):
            return True
        time.sleep(0.1)
    raise LabError(f"the relay on {listen_host} did not start listening; see {log_dir / 'relay.log'}")


def _listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
