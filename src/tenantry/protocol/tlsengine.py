"""TLS over two memory BIOs: the one TLS engine of every listener and dialer that does TLS itself.

Python 3.11's ``asyncio/sslproto.py`` allocates a 256 KiB read buffer per connection
(≈ 320 KiB RSS per idle TLS connection measured), which an unauthenticated peer can
multiply.  Here the only per-connection buffers are OpenSSL's own and what is in flight;
the caller moves bytes between the socket and :meth:`feed` / :meth:`outgoing`.
"""

from __future__ import annotations

import contextlib
import ssl
import threading

#: Plaintext decrypted into one scratch buffer per thread (shared by every connection: none keeps a
#: buffer of its own), then copied out once per :meth:`TLSEngine.read`.
_SCRATCH = 1 << 18
_RECORD = 16384 + 256  # the most one TLS record holds, with room to spare
_scratch = threading.local()


def _scratch_buffer() -> bytearray:
    buf: bytearray | None = getattr(_scratch, "buf", None)
    if buf is None:
        buf = _scratch.buf = bytearray(_SCRATCH)
    return buf


class TLSError(ConnectionError):
    """The TLS layer failed; ``str()`` is the reason (OpenSSL's, without the noise)."""


def ssl_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason) if reason else str(exc)


class TLSEngine:
    def __init__(self, ctx: ssl.SSLContext, *, server_side: bool, server_hostname: str | None = None) -> None:
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        try:
            self._ssl: ssl.SSLObject | None = ctx.wrap_bio(
                self._in, self._out, server_side=server_side, server_hostname=server_hostname
            )
        except (ssl.SSLError, ValueError) as exc:
            raise TLSError(f"TLS setup failed: {ssl_reason(exc)}") from None
        self.secure = False

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        return self._ssl

    def feed(self, data: bytes) -> None:
        """Bytes that arrived from the peer."""
        self._in.write(data)

    def outgoing(self) -> bytes:
        """Bytes to send to the peer (handshake records, encrypted data, alerts)."""
        return self._out.read()

    def handshake(self) -> bool:
        """Advance the handshake with what was fed; ``True`` once it is complete."""
        if self.secure:
            return True
        if self._ssl is None:
            raise TLSError("TLS closed")
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            return False
        except (ssl.SSLError, OSError) as exc:
            raise TLSError(f"TLS handshake failed: {ssl_reason(exc)}") from None
        self.secure = True
        return True

    def read(self) -> tuple[bytes, str]:
        """All plaintext that can be decrypted now, and why the stream ended (``""``: still open).

        OpenSSL hands out one record (<= 16 KiB) per read: collect them all so the caller
        parses once per socket read, not once per record.  They are decrypted into a scratch
        buffer, one after the other, and copied out once: a new object per record, joined
        afterwards, cost an allocation per record and a second copy of every byte.
        """
        if self._ssl is None:
            return b"", "TLS closed"
        parts: list[bytes] = []
        eof = ""
        size = 0
        with memoryview(_scratch_buffer()) as view:
            while True:
                if _SCRATCH - size < _RECORD:
                    parts.append(bytes(view[:size]))
                    size = 0
                try:
                    got: int = self._ssl.read(_SCRATCH - size, view[size:])  # type: ignore[assignment]  # with a buffer: a count
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:
                    eof = "peer closed TLS"
                    break
                except (ssl.SSLError, OSError) as exc:
                    eof = f"TLS error: {ssl_reason(exc)}"
                    break
                if not got:
                    eof = "peer closed TLS"
                    break
                size += got
            if size:
                parts.append(bytes(view[:size]))
        if not parts:
            return b"", eof
        return (parts[0] if len(parts) == 1 else b"".join(parts)), eof

    def write(self, data: bytes | memoryview) -> None:
        """Encrypt ``data``; take the records with :meth:`outgoing`."""
        if self._ssl is None:
            raise TLSError("TLS closed")
        try:
            self._ssl.write(data)
        except (ssl.SSLError, OSError) as exc:
            raise TLSError(f"TLS write failed: {ssl_reason(exc)}") from None

    def alpn(self) -> str | None:
        """The application protocol the handshake agreed on (ALPN), if any."""
        if self._ssl is None or not self.secure:
            return None
        return self._ssl.selected_alpn_protocol()

    def shutdown(self) -> None:
        """Half-close: send close_notify but keep reading what the peer still sends (TLS 1.3 allows it)."""
        if self._ssl is None or not self.secure:
            return
        with contextlib.suppress(ssl.SSLError, OSError, ValueError):
            self._ssl.unwrap()

    def peer_certificate(self) -> bytes | None:
        """The peer's certificate (DER) once the handshake is done, if it sent one."""
        if self._ssl is None or not self.secure:
            return None
        return self._ssl.getpeercert(binary_form=True) or None

    def close(self) -> bytes:
        """Say goodbye (close_notify) if possible and drop the TLS state; returns the bytes to send."""
        if self._ssl is not None and self.secure:
            with contextlib.suppress(ssl.SSLError, OSError, ValueError):
                self._ssl.unwrap()
        out = self._out.read()
        self._ssl = None
        return out
