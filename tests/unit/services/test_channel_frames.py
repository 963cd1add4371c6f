"""The channel's frame buffer for whole frames gives h2 exactly the events h2's own buffer gives,
and the channel's sending side (DATA payloads as pieces, not copied) sends exactly h2's bytes.

Two real h2 connections: a client makes the bytes (headers long enough for CONTINUATION frames,
DATA of several sizes, a PING, a WINDOW_UPDATE); a server with h2's own buffer and one with the
channel's read them, fed whole frames (what the channel does) or cut anywhere (the fallback path).
"""

from __future__ import annotations

import random
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from tenantry.protocol.channel import _H2Connection, _WholeFrameBuffer

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


def _client_bytes(pieces: bool = False) -> bytes:
    """Everything a client sends: its preface and SETTINGS, the ACK of the server's, then its frames.

    ``pieces``: made by the channel's connection, its pieces joined (one batch of them per call, as
    the channel flushes after each call).
    """
    cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    client = _H2Connection(cfg) if pieces else h2.connection.H2Connection(config=cfg)
    out: list[bytes] = []

    def flush() -> None:
        if isinstance(client, _H2Connection) and pieces:
            out.extend(bytes(p) for p in client.pieces_to_send())

    if pieces:
        client.send_data = _flushing(client.send_data, flush)  # type: ignore[method-assign]
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
    client.send_data(1, memoryview(rng.randbytes(40000))[5:], end_stream=True)
    flush()
    return sent + b"".join(out) + client.data_to_send()


def _flushing(send: Any, flush: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> None:
        send(*args, **kwargs)
        flush()

    return call


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
    assert [len(e[1]) for e in expected if e[0] == "data"] == [1, 100, 16384, 70000, FRAME, 5, 39995]  # type: ignore[arg-type]
    assert _read(True, pieces) == expected


def test_pieces_are_h2s_own_bytes() -> None:
    """The channel's connection hands out large payloads as they are; joined, they are h2's bytes."""
    assert _client_bytes(pieces=True) == _client_bytes()
