"""Uplink admission: the handshake window and the busy line a refused Transporter is given."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from tenantry.common import pki
from tenantry.director.limits import HandshakeWindow
from tenantry.protocol import busy, tls
from tenantry.protocol.channel import Channel, ChannelClosed


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_window_bounds_admissions_and_completions_in_every_second() -> None:
    """Random arrivals and handshake durations: no 1 s window ever starts or completes more than the limit."""
    clock = Clock()
    window = HandshakeWindow(clock)
    rng = random.Random(7)
    limit = 20
    started: list[float] = []
    ended: list[float] = []
    running: list[float] = []  # end times of admitted handshakes
    for _ in range(20000):
        clock.now += rng.expovariate(400)  # offered: 400 connections/s against a limit of 20
        for end in [e for e in running if e <= clock.now]:
            running.remove(end)
            window.ended()
            ended.append(end)
        if window.admit(limit):
            started.append(clock.now)
            # Handshakes that take from 1 ms to 3 s: slow ones pile up and would complete in bursts.
            running.append(clock.now + rng.choice([0.001, 0.05, 0.5, 3.0]))

    def peak(times: list[float]) -> int:
        times = sorted(times)
        best, j = 0, 0
        for i, t in enumerate(times):
            while times[j] <= t - 1.0:
                j += 1
            best = max(best, i - j + 1)
        return best

    assert peak(started) <= limit
    assert peak(ended) <= limit
    assert len(started) > 10 * limit  # and it did admit work, not nothing


def test_a_slot_frees_one_second_after_its_handshake_ends() -> None:
    clock = Clock()
    window = HandshakeWindow(clock)
    assert window.admit(2) and window.admit(2)
    assert not window.admit(2)
    window.ended()  # one finishes (or fails) now
    assert not window.admit(2)  # its slot is held for another second
    clock.now += 1.01
    assert window.admit(2)
    assert window.held() == 2


def test_busy_line_round_trip_and_refusals() -> None:
    assert busy.parse(busy.encode(12.34)) == pytest.approx(12.3)
    assert busy.parse(busy.encode(-3)) == 0.0
    assert busy.parse(b"\x16\x03\x01\x00\xa0") is None  # a TLS record
    assert busy.parse(busy.PREFIX + b"nan\n") is None
    assert busy.parse(busy.PREFIX + b"1e9\n") is None
    assert busy.parse(busy.PREFIX + b"junk") is None


def test_client_channel_reads_the_busy_line_instead_of_failing_tls(tmp_path: Path) -> None:
    ca = pki.new_ca("test CA")
    pki.write_keypair(ca, tmp_path / "ca.crt", tmp_path / "ca.key")

    class Refuse(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            transport.write(busy.encode(7.5))
            transport.close()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Refuse, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ctx = tls.client_context(ca=tmp_path / "ca.crt")
        _t, channel = await loop.create_connection(
            lambda: Channel(ctx, server_side=False, h2_client=False, server_hostname="127.0.0.1"), "127.0.0.1", port
        )
        with pytest.raises(ChannelClosed, match="busy"):
            await asyncio.wait_for(channel.ready, 5)
        assert channel.busy_retry_after == 7.5
        server.close()

    asyncio.run(main())
