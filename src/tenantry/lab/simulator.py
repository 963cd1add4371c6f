"""Start and stop one govmomi simulator process (``tenantry-vcsim``).

The password is random, passed to the process in its environment (never on
its command line) and kept out of ``repr`` and logs.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import ssl
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from tenantry.lab.build import binary_path
from tenantry.lab.errors import LabError
from tenantry.lab.procs import running_as
from tenantry.lab.tls import ensure_tls

Mode = Literal["vcenter", "esx", "client"]

PASSWORD_ENV = "TENANTRY_VCSIM_PASSWORD"
DEFAULT_USERNAME = "administrator@vsphere.local"
_STDERR_TAIL = 2000


@dataclass(frozen=True)
class Endpoint:
    """How to reach one running simulator over verified TLS."""

    hostname: str
    port: int
    username: str
    password: str = field(repr=False)
    ca_file: Path
    pid: int

    @property
    def url(self) -> str:
        return f"https://{self.hostname}:{self.port}/sdk"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only the lab CA and checks the host name."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def to_json(self) -> dict[str, Any]:
        """Everything, password included: for 0600 state files only."""
        return {
            "hostname": self.hostname,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "ca_file": str(self.ca_file),
            "pid": self.pid,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Endpoint:
        return cls(
            hostname=str(data["hostname"]),
            port=int(data["port"]),
            username=str(data["username"]),
            password=str(data["password"]),
            ca_file=Path(data["ca_file"]),
            pid=int(data["pid"]),
        )


def is_simulator(pid: int) -> bool:
    """True when ``pid`` is a live tenantry-vcsim process (guards against reused pids)."""
    return running_as(pid, b"tenantry-vcsim", program_only=True)


def terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM a simulator that is not our child, wait, SIGKILL as a last resort."""
    if not is_simulator(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_simulator(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        time.sleep(0.05)


def _tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-_STDERR_TAIL:].strip()


def directory_file(state_dir: Path, name: str) -> Path:
    """The vcenter-mode simulator's directory accounts (its stand-in for vCenter's SSO domain)."""
    return state_dir.resolve() / "directory" / f"{name}.json"


def add_directory_user(state_dir: Path, name: str, user: str, password: str) -> None:
    """Give simulator ``name`` (vcenter mode) a directory account ``user`` (``acme-ops@vsphere.local``).

    It logs in with ``password`` and ``RetrieveUserGroups`` finds it; what it may do comes from the
    permissions it is given.  The file is 0600 and read by the simulator at each login.
    """
    path = directory_file(state_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        accounts = json.loads(path.read_text())
    except (OSError, ValueError):
        accounts = {}
    accounts[user] = password
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(json.dumps(accounts))
    tmp.replace(path)


class Simulator:
    """One simulator process; ``start`` returns its :class:`Endpoint`, ``stop`` ends it.

    Usable as a context manager (``with Simulator() as sim: sim.start(...)``).
    Files go under ``state_dir``: ``run/<name>.ready``, ``logs/<name>.log``,
    ``tls/`` (the lab CA, kept) and ``nfs/`` (NAS datastores with a relative
    local path, shared by every simulator of the state directory).
    """

    def __init__(self, binary: Path | None = None) -> None:
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None
        self._endpoint: Endpoint | None = None

    @property
    def endpoint(self) -> Endpoint:
        if self._endpoint is None:
            raise LabError("the simulator is not running")
        return self._endpoint

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(
        self,
        mode: Mode,
        state_dir: Path,
        name: str,
        port: int = 0,
        latency: str | None = None,
        *,
        hosts: int | None = None,
        vms: int | None = None,
        datastore_dir: Path | None = None,
        client_vms: list[str] | None = None,
        disk_mib: int | None = None,
        username: str = DEFAULT_USERNAME,
        question_timeout: float | None = None,
        timeout: float = 30.0,
        detach: bool = False,
    ) -> Endpoint:
        """Start the simulator and wait for its ready file.

        ``latency`` is the ``-latency`` flag, e.g. ``"RegisterVM=120ms,*=5ms"``.
        ``question_timeout`` (seconds) is ``-question-timeout``: how long a power-on waits for the
        answer to "moved or copied?" before it fails (0 waits forever; default 30 s).
        Without ``detach`` the process exits when this one dies (it watches a
        pipe on its stdin), so a killed test run leaves no simulator behind;
        ``detach`` puts it in its own session to outlive the caller (the CLI's ``up``).
        """
        if self._process is not None:
            raise LabError(f"simulator {name} already started")
        if mode not in ("vcenter", "esx", "client"):
            raise LabError(f"mode must be 'vcenter', 'esx' or 'client', not {mode!r}")
        binary = self._binary or binary_path()
        if not binary.exists():
            raise LabError(f"{binary} is missing: run 'python -m tenantry.lab build'")

        state_dir = state_dir.resolve()
        tls = ensure_tls(state_dir)
        ready = state_dir / "run" / f"{name}.ready"
        log = state_dir / "logs" / f"{name}.log"
        nfs_root = state_dir / "nfs"
        for directory in (ready.parent, log.parent, nfs_root):
            directory.mkdir(parents=True, exist_ok=True)
        ready.unlink(missing_ok=True)

        password = secrets.token_urlsafe(24)
        argv = [
            str(binary),
            f"-mode={mode}",
            f"-listen=127.0.0.1:{port}",
            f"-tls-cert={tls.cert_file}",
            f"-tls-key={tls.key_file}",
            f"-username={username}",
            f"-ready-file={ready}",
            f"-nfs-root={nfs_root}",
        ]
        if latency:
            argv.append(f"-latency={latency}")
        if hosts is not None:
            argv.append(f"-hosts={hosts}")
        if vms is not None:
            argv.append(f"-vms={vms}")
        if question_timeout is not None:
            argv.append(f"-question-timeout={question_timeout}s")
        if mode == "vcenter":
            argv.append(f"-directory={directory_file(state_dir, name)}")
        if datastore_dir is not None:
            argv.append(f"-datastore-dir={datastore_dir}")
        if client_vms:
            argv.append(f"-client-vms={','.join(client_vms)}")
        if disk_mib is not None:
            argv.append(f"-disk-mib={disk_mib}")
        if not detach:
            argv.append("-watch-stdin")

        env = {**os.environ, PASSWORD_ENV: password}
        with log.open("ab") as log_file:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL if detach else subprocess.PIPE,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=detach,
            )
        info = self._wait_ready(ready, log, name, timeout)
        self._endpoint = Endpoint(
            hostname=str(info["host"]),
            port=int(info["port"]),
            username=username,
            password=password,
            ca_file=tls.ca_file,
            pid=self._process.pid,
        )
        return self._endpoint

    def _wait_ready(self, ready: Path, log: Path, name: str, timeout: float) -> dict[str, Any]:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self.stop()
                raise LabError(f"simulator {name} exited with status {code}; {log} ends with:\n{_tail(log)}")
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                info: dict[str, Any] = json.loads(ready.read_text())
                if info.get("pid") == self._process.pid:
                    return info
            time.sleep(0.02)
        self.stop()
        raise LabError(f"simulator {name} was not ready within {timeout:.0f} s; {log} ends with:\n{_tail(log)}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (the simulator removes its temporary directories), wait, SIGKILL as a last resort."""
        process, self._process, self._endpoint = self._process, None, None
        if process is None:
            return
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            if process.stdin is not None:
                process.stdin.close()

    def __enter__(self) -> Simulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
