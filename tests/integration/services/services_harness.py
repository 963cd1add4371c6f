"""Real Director and Transporter processes on loopback, for the services' integration tests.

Everything is real: TLS, certificates, SQLite, sockets, signals.  Heartbeats and
backoff are shortened through Expert Settings seeds so the suite stays fast.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

PY = sys.executable

FAST_SEEDS = {
    "heartbeat_interval": 0.3,
    "heartbeat_misses": 3,
    "reconnect_backoff_cap": 1.0,
    "shutdown_grace": 5,
    "enroll_failures_per_minute": 5,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition", interval: float = 0.1
) -> Any:
    """Poll until ``predicate()`` is truthy; an outcome check with a generous deadline, not a speed test."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the peer may be restarting
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}" + (f" (last error: {last_exc})" if last_exc else ""))


class ApiError(Exception):
    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class DirectorProc:
    def __init__(
        self, root: Path, seeds: dict[str, Any] | None = None, *, fast_argon2: bool = True, config: str = ""
    ) -> None:
        self.root = root
        self.fast_argon2 = fast_argon2
        self.config = config  # TOML text of a --config file (e.g. a [jobs] table)
        self.state = root / "director"
        self.setup_port = free_port()
        self.uplink_port = free_port()
        self.seeds = FAST_SEEDS | (seeds or {})
        self.log_path = root / "director.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ctx = ssl.create_default_context(cafile=None)
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.setup_port}"

    def start(self) -> DirectorProc:
        args = [
            PY,
            "-m",
            "tenantry.director",
            "--state-dir",
            str(self.state),
            "--listen-host",
            "127.0.0.1",
            "--server-name",
            "127.0.0.1",
            "--server-name",
            "localhost",
            "--setup-port",
            str(self.setup_port),
            "--uplink-port",
            str(self.uplink_port),
        ]
        for key, value in self.seeds.items():
            args += ["--seed-setting", f"{key}={value}"]
        if self.config:
            config_file = self.root / "director.toml"
            config_file.write_text(self.config)
            args += ["--config", str(config_file)]
        log = self.log_path.open("ab")
        env = dict(os.environ)
        if self.fast_argon2:  # tests only: the enrollment secret has 256 bits, the KDF cost is not under test
            env |= {"TENANTRY_DIRECTOR_ARGON2_MEMORY_KIB": "8192", "TENANTRY_DIRECTOR_ARGON2_ITERATIONS": "1"}
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, env=env)
        wait_for(self._healthy, 30, "the Director to answer")
        # Trust the CA from now on (verified TLS, like a real client).
        self.ctx = ssl.create_default_context(cafile=str(self.state / "ca.crt"))
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"Director exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
        try:
            self.api("GET", "/api/v1/health", auth=False)
            return True
        except (OSError, ApiError):
            return False

    @property
    def token(self) -> str:
        return (self.state / "admin.token").read_text().strip()

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: bool = True,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=30) as resp:
                text = resp.read()
                return json.loads(text) if text else None
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            try:
                detail = json.loads(payload).get("detail")
            except ValueError:
                detail = payload.decode(errors="replace")
            raise ApiError(exc.code, detail) from None

    def basic(self, user: str, password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    def create_tenant(self, name: str, **extra: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.api("POST", "/api/v1/tenants", {"name": name, **extra})
        return result

    def status(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.api("GET", f"/api/v1/tenants/{name}/status")
        return result

    def online(self, name: str) -> bool:
        return bool(self.status(name)["online"])

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class TransporterProc:
    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self.state = root / f"transporter-{name}"
        self.log_path = root / f"transporter-{name}.log"
        self.config = root / f"transporter-{name}.toml"
        self.proc: subprocess.Popen[bytes] | None = None

    def enroll(self, director: DirectorProc, enrollment_key: str) -> subprocess.CompletedProcess[str]:
        key_file = self.root / f"{self.name}.key"
        key_file.write_text(enrollment_key)
        key_file.chmod(0o600)
        return subprocess.run(
            [
                PY,
                "-m",
                "tenantry.transporter",
                "enroll",
                "--state-dir",
                str(self.state),
                "--director-url",
                director.url,
                "--enrollment-key-file",
                str(key_file),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def start(self, *args: str, config: str = "") -> TransporterProc:
        self.config.write_text("backoff_base = 0.2\n" + config)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                PY,
                "-m",
                "tenantry.transporter",
                "run",
                "--config",
                str(self.config),
                "--state-dir",
                str(self.state),
                *args,
            ],
            stdout=log,
            stderr=log,
        )
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def state_json(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads((self.state / "transporter.json").read_text())
        return result


def enroll_and_run(director: DirectorProc, transporter: TransporterProc, *args: str, **tenant: Any) -> dict[str, Any]:
    created = director.create_tenant(transporter.name, **tenant)
    result = transporter.enroll(director, created["credentials"]["enrollment_key"])
    assert result.returncode == 0, result.stderr
    transporter.start(*args)
    return created


class EchoServer:
    """A TCP echo server on loopback that counts the connections it accepted (the tunnels' far end)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = int(self.server.getsockname()[1])
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.server.close()


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)
