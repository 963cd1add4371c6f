"""Several real Directors sharing a real PostgreSQL, behind a real HAProxy (Debian's), on loopback.

Every Director listens on the *same* setup and uplink ports (they share their Expert Settings),
each on its own loopback address (127.0.0.2, 127.0.0.3, ...); HAProxy listens on 127.0.0.1 with
those ports too, in TCP mode with health checks, and sends the PROXY protocol v2 header so the
Directors see each client's real address.  Transporters and API clients use 127.0.0.1, as they
would use the load balancer's name.  The CA and the admin token of the first Director are copied
to the others before their first start, as the director role does.
"""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
from pathlib import Path
from typing import Any

from services_harness import FAST_SEEDS, PY, DirectorProc, free_port, wait_for

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
SHARED_FILES = ("ca.crt", "ca.key", "admin.token")


class ClusterDirector(DirectorProc):
    """One Director of a cluster: its own address and state directory, the cluster's database and ports."""

    def __init__(
        self,
        root: Path,
        name: str,
        host: str,
        *,
        database_url: str,
        setup_port: int,
        uplink_port: int,
        seeds: dict[str, Any] | None = None,
        proxy: str = "127.0.0.1",
    ) -> None:
        # The proxy's address is trusted for the PROXY protocol header (and X-Forwarded-For).
        super().__init__(root, {"trusted_proxies": f'["{proxy}/32"]', **(seeds or {})})
        self.name = name
        self.host = host
        self.database_url = database_url
        self.state = root / name
        self.log_path = root / f"{name}.log"
        self.setup_port = setup_port
        self.uplink_port = uplink_port
        self.peer_port = free_port()

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.setup_port}"

    def share_from(self, first: DirectorProc) -> None:
        """The cluster's CA and admin token, before the first start (what the role distributes)."""
        self.state.mkdir(parents=True, exist_ok=True)
        self.state.chmod(0o700)
        for name in SHARED_FILES:
            shutil.copy2(first.state / name, self.state / name)
            (self.state / name).chmod(0o600 if name != "ca.crt" else 0o644)

    def start(self) -> ClusterDirector:
        args = [
            PY,
            "-m",
            "tenantry.director",
            "--state-dir",
            str(self.state),
            "--listen-host",
            self.host,
            "--server-name",
            "127.0.0.1",
            "--server-name",
            "localhost",
            "--server-name",
            self.host,
            "--setup-port",
            str(self.setup_port),
            "--uplink-port",
            str(self.uplink_port),
            "--database-url",
            self.database_url,
            "--peer-port",
            str(self.peer_port),
            "--peer-address",
            self.host,
            "--node-name",
            self.name,
        ]
        for key, value in self.seeds.items():
            args += ["--seed-setting", f"{key}={value}"]
        env = dict(os.environ)
        if self.fast_argon2:
            env |= {"TENANTRY_DIRECTOR_ARGON2_MEMORY_KIB": "8192", "TENANTRY_DIRECTOR_ARGON2_ITERATIONS": "1"}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, env=env)
        wait_for(self._healthy, 30, f"Director {self.name} to answer")
        self.ctx = ssl.create_default_context(cafile=str(self.state / "ca.crt"))
        return self

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self.api("GET", "/api/v1/health", auth=False)
        return result


class Balancer(DirectorProc):
    """The API and setup URL through HAProxy (never started itself: it talks to whichever Director)."""

    def __init__(self, first: ClusterDirector, host: str = "127.0.0.1") -> None:
        super().__init__(first.root)
        self.first = first
        self.host = host
        self.setup_port = first.setup_port
        self.uplink_port = first.uplink_port
        self.state = first.state
        self.ctx = ssl.create_default_context(cafile=str(first.state / "ca.crt"))

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.setup_port}"

    def start(self) -> Balancer:
        raise NotImplementedError("the balancer is HAProxy; start the Directors")


class HAProxy:
    """Debian's haproxy in TCP mode in front of the setup and uplink ports of every Director."""

    def __init__(
        self,
        root: Path,
        directors: list[ClusterDirector],
        host: str = "127.0.0.1",
        maxconn: int = 2000,
        check_inter: str = "500ms",
    ) -> None:
        self.root = root
        self.maxconn = maxconn
        # Tests probe every 500 ms to see a death quickly; benchmarks use the director_lb role's 2 s (a
        # probe's TLS handshake must complete within the interval, and a Director busy with a reconnect
        # storm on a shared 2-core machine takes longer than 500 ms to answer one).
        self.check_inter = check_inter
        self.directors = directors
        self.host = host
        self.config = root / "haproxy.cfg"
        self.log_path = root / "haproxy.log"
        self.stats_socket = root / "haproxy.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    def render(self) -> str:
        first = self.directors[0]
        setup_servers = "\n".join(
            f"    server {d.name} {d.host}:{d.setup_port} check check-ssl verify none check-send-proxy "
            f"send-proxy-v2 inter {self.check_inter} fall 2 rise 2"
            for d in self.directors
        )
        uplink_servers = "\n".join(
            f"    server {d.name} {d.host}:{d.uplink_port} track setup/{d.name} send-proxy-v2" for d in self.directors
        )
        return f"""global
    maxconn {self.maxconn}
    stats socket {self.stats_socket} mode 600 level admin

defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    timeout check 2s
    retries 3
    option redispatch

frontend setup
    bind {self.host}:{first.setup_port}
    default_backend setup

backend setup
    balance roundrobin
    option httpchk
    http-check send meth GET uri /api/v1/health ver HTTP/1.1 hdr Host director
    http-check expect status 200
{setup_servers}

frontend uplink
    bind {self.host}:{first.uplink_port}
    default_backend uplink

backend uplink
    balance leastconn
{uplink_servers}
"""

    def start(self) -> HAProxy:
        self.config.write_text(self.render())
        check = subprocess.run([HAPROXY, "-c", "-f", str(self.config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise AssertionError(f"haproxy refused its configuration: {check.stdout}{check.stderr}")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(self.config)], stdout=log, stderr=log)
        wait_for(self.listening, 15, "haproxy to listen")
        return self

    def listening(self) -> bool:
        import socket

        with socket.socket() as s:
            return s.connect_ex((self.host, self.directors[0].setup_port)) == 0

    def servers_up(self) -> dict[str, str]:
        """``show servers state`` of the setup backend: server name -> UP/DOWN (via the stats socket)."""
        import socket

        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.stats_socket))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        out = {}
        for line in data.decode().splitlines():
            fields = line.split(",")
            if len(fields) > 17 and fields[0] == "setup" and fields[1] not in ("FRONTEND", "BACKEND"):
                out[fields[1]] = fields[17]
        return out

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_cluster(
    root: Path,
    database_url: str,
    count: int,
    seeds: dict[str, Any] | None = None,
    *,
    ports: tuple[int, int] | None = None,
    fast_argon2: bool = True,
    maxconn: int = 2000,
    check_inter: str = "500ms",
) -> tuple[list[ClusterDirector], HAProxy, Balancer]:
    """``count`` Directors on 127.0.0.2.. sharing ``database_url``, HAProxy on 127.0.0.1."""
    setup_port, uplink_port = ports or (free_port(), free_port())
    seeds = FAST_SEEDS | (seeds or {})
    directors = [
        ClusterDirector(
            root,
            f"d{i + 1}",
            f"127.0.0.{i + 2}",
            database_url=database_url,
            setup_port=setup_port,
            uplink_port=uplink_port,
            seeds=seeds,
        )
        for i in range(count)
    ]
    for d in directors:
        d.fast_argon2 = fast_argon2
    directors[0].start()
    for d in directors[1:]:
        d.share_from(directors[0])
        d.start()
    proxy = HAProxy(root, directors, maxconn=maxconn, check_inter=check_inter).start()
    lb = Balancer(directors[0])
    wait_for(lambda: set(proxy.servers_up().values()) == {"UP"}, 20, "every Director UP in haproxy")
    return directors, proxy, lb
