"""Fixtures: a real Director process and real Transporter processes on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from services_harness import DirectorProc, EchoServer, TransporterProc, enroll_and_run, wait_for


@pytest.fixture
def director(tmp_path: Path) -> Iterator[DirectorProc]:
    proc = DirectorProc(tmp_path).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def make_transporter(tmp_path: Path) -> Iterator[Callable[..., TransporterProc]]:
    made: list[TransporterProc] = []

    def make(name: str) -> TransporterProc:
        t = TransporterProc(tmp_path, name)
        made.append(t)
        return t

    try:
        yield make
    finally:
        for t in made:
            t.stop()


@pytest.fixture
def two_online(
    director: DirectorProc, make_transporter: Callable[..., TransporterProc], tmp_path: Path
) -> tuple[TransporterProc, TransporterProc]:
    a = make_transporter("tenant-a")
    b = make_transporter("tenant-b")
    enroll_and_run(director, a, "--allow", "127.0.0.1:7", description="client A", contact="a@example.net")
    enroll_and_run(director, b, "--allow", "127.0.0.1:9", description="client B", workload_quota=5)
    wait_for(lambda: director.online("tenant-a") and director.online("tenant-b"), 30, "both tenants online")
    return a, b


@pytest.fixture
def echo_port() -> Iterator[int]:
    """The port of a TCP echo server on loopback (a tunnel's far end)."""
    server = EchoServer()
    try:
        yield server.port
    finally:
        server.close()
