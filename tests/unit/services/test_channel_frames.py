"""The channel's frame buffer for whole frames gives h2 exactly the events h2's own buffer gives.

Two real h2 connections: a client makes the bytes (headers long enough for CONTINUATION frames,
DATA of several sizes, a PING, a WINDOW_UPDATE); a server with h2's own buffer and one with the
channel's read them, fed whole frames (what the channel does) or cut anywhere (the fallback path).
"""

from __future__ import annotations

import random

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from tenantry.protocol.channel import _WholeFrameBuffer

FRAME = 1 << 20


def _server(whole: bool) -> h2.connection.H2Connection:
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    if whole:
        conn.incoming_buffer = _WholeFrameBuffer(server=True)
    conn.local_settings = h2.settings.Settings(
        client=False,
        initial_values={
            h2.settings.SettingCodes.MAX_FRAME_SIZE: FRAME,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 30,
        },
    )
    conn.max_inbound_frame_size = FRAME
    conn.initiate_connection()
    conn.increment_flow_control_window((1 << 30) - 65535)
    return conn


def _client_bytes() -> bytes:
    """Everything a client sends: its preface and SETTINGS, the ACK of the server's, then its frames."""
    client = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    client.initiate_connection()
    sent = client.data_to_send()
    server = _server(False)
    server.receive_data(sent)
    client.receive_data(server.data_to_send())  # the server's SETTINGS (1 MiB frames) and window
    big = [(f"x-pad-{i}", "v" * 1000) for i in range(40)]  # ~40 KiB of headers: CONTINUATION frames
    headers = [(":method", "POST"), (":path", "/upload"), (":scheme", "https"), (":authority", "t"), *big]
    client.send_headers(1, headers)
    rng = random.Random(7)
    for size in (1, 100, 16384, 70000, FRAME, 5):
        client.send_data(1, rng.randbytes(size))
    client.ping(b"12345678")
    client.increment_flow_control_window(5000)
    client.end_stream(1)
    return sent + client.data_to_send()


def _frames(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        end = pos + 9 + int.from_bytes(data[pos : pos + 3], "big")
        out.append(data[pos:end])
        pos = end
    return out


def _summary(events: list[h2.events.Event]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for e in events:
        if isinstance(e, h2.events.RequestReceived):
            out.append(("request", tuple(e.headers or [])))
        elif isinstance(e, h2.events.DataReceived):
            out.append(("data", bytes(e.data or b""), e.flow_controlled_length))
        elif isinstance(e, h2.events.PingReceived):
            out.append(("ping", e.ping_data))
        else:
            out.append((type(e).__name__,))
    return out


def _read(whole_buffer: bool, pieces: list[bytes]) -> list[tuple[object, ...]]:
    conn = _server(whole_buffer)
    events: list[h2.events.Event] = []
    for piece in pieces:
        events += conn.receive_data(memoryview(piece))
    return _summary(events)


@pytest.mark.parametrize("cut", ["whole frames", "anywhere"])
def test_same_events_as_h2s_own_buffer(cut: str) -> None:
    data = _client_bytes()
    pieces = [data[:24]]  # the channel feeds the client's preface on its own, then whole frames
    if cut == "whole frames":
        pieces += _frames(data[24:])
    else:
        rng = random.Random(3)
        pos = 24
        while pos < len(data):
            step = rng.choice((1, 7, 9, 100, 5000, 300000))
            pieces.append(data[pos : pos + step])
            pos += step
    expected = _read(False, [data])
    requests = [e for e in expected if e[0] == "request"]
    assert len(requests) == 1 and len(requests[0][1]) == 44  # type: ignore[arg-type]  # CONTINUATION joined
    assert [len(e[1]) for e in expected if e[0] == "data"] == [1, 100, 16384, 70000, FRAME, 5, 0]  # type: ignore[arg-type]
    assert _read(True, pieces) == expected
