"""A real PostgreSQL server for tests and benchmarks: Debian's binaries, a throw-away cluster.

``initdb`` into a temporary directory, ``pg_ctl start`` on a free loopback port (and a socket in
that directory), ``trust`` authentication for loopback only, C collation (the same ordering as
SQLite).  PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres``
system user (``runuser``); as anyone else it runs as that user.  Each test gets its own database
(:meth:`PostgresServer.create_database`), the server is shared by the session.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BIN = Path(os.environ.get("TENANTRY_PG_BIN", "/usr/lib/postgresql/15/bin"))


def available() -> bool:
    return (BIN / "initdb").exists() and (BIN / "pg_ctl").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self, root: Path | None = None, *, port: int | None = None, host: str = "127.0.0.1") -> None:
        # By default its own directory under /tmp: the postgres user cannot enter a test's 0700 tmp_path.
        # A given ``root`` (kept between benchmark runs) must be reachable by that user.
        self._own_root = root is None
        self.root = root or Path(tempfile.mkdtemp(prefix="tenantry-pg-"))
        self.data = self.root / "data"
        self.port = port or _free_port()
        self.host = host
        self._user: str | None = "postgres" if os.geteuid() == 0 else None
        self._counter = 0

    # ------------------------------------------------------------------ running
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self._user is not None:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> PostgresServer:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        if not (self.data / "PG_VERSION").exists():
            self._run(
                str(BIN / "initdb"),
                "-D",
                str(self.data),
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
        options = (
            f"-c listen_addresses={self.host} -c port={self.port} -c unix_socket_directories={self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 "
            "-c shared_buffers=64MB"
        )
        result = self._run(
            str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", "start"
        )
        if result.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start: {result.stderr}{self.log()[-2000:]}")
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def kill(self) -> None:
        """Stop at once (immediate mode: like a crash, recovery on the next start)."""
        self.stop("immediate")

    def cleanup(self) -> None:
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ------------------------------------------------------------------ databases
    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@{self.host}:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = self._run(
            str(BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", self.url(database), "-c", sql
        )
        return result.stdout.strip()

    def ensure_database(self, name: str) -> str:
        """The database ``name``, created when missing; its URL."""
        if not self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'"):
            self.psql(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")
        return self.url(name)

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL."""
        self._counter += 1
        name = f"{prefix}_{os.getpid()}_{self._counter}_{int(time.time() * 1000) % 100000}"
        self.psql(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")
        return self.url(name)
