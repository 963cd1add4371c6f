"""Read a tar stream (``restic dump`` of a directory) member by member, without buffering it.

The standard library's :mod:`tarfile` parses each 512-byte header (``TarInfo.frombuf``); this
module only walks the stream: PAX (``x``) and GNU long-name (``L``) headers are applied to the
member that follows, and each member's content is handed out in chunks as it arrives, so a
multi-gigabyte disk never sits in memory.
"""

from __future__ import annotations

import asyncio
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass

BLOCK = 512
_CHUNK = 1 << 20
_META_LIMIT = 1 << 20  # PAX and long-name headers are small; anything bigger is refused


class TarError(ValueError):
    pass


@dataclass
class Member:
    name: str
    size: int
    kind: str  # "file", "dir" or "other"
    mtime: float


class TarReader:
    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._left = 0  # unread content bytes of the current member
        self._pad = 0

    async def _exact(self, n: int) -> bytes:
        try:
            return await self._reader.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            raise TarError("tar stream ended in the middle of a member") from exc

    async def _skip_rest(self) -> None:
        while self._left:
            n = min(self._left, _CHUNK)
            await self._exact(n)
            self._left -= n
        if self._pad:
            await self._exact(self._pad)
            self._pad = 0

    async def next(self) -> Member | None:
        """The next member (its content is read with :meth:`chunks`), or ``None`` at the end."""
        await self._skip_rest()
        long_name: str | None = None
        pax: dict[str, str] = {}
        while True:
            block = await self._exact(BLOCK)
            if block == bytes(BLOCK):
                return None
            try:
                info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
            except tarfile.HeaderError as exc:
                raise TarError(f"bad tar header: {exc}") from None
            size = info.size
            if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME):
                if size > _META_LIMIT:
                    raise TarError("tar extension header too large")
                data = await self._exact(size)
                await self._exact(-size % BLOCK)
                if info.type == tarfile.GNUTYPE_LONGNAME:
                    long_name = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
                elif info.type == tarfile.XHDTYPE:
                    pax.update(_pax(data))
                continue
            name = pax.get("path") or long_name or info.name
            if "size" in pax:
                size = int(pax["size"])
            kind = "file" if info.type in tarfile.REGULAR_TYPES else "dir" if info.type == tarfile.DIRTYPE else "other"
            self._left = size if kind == "file" else 0
            self._pad = -self._left % BLOCK
            return Member(name=name.rstrip("/"), size=size, kind=kind, mtime=float(info.mtime))

    async def chunks(self) -> AsyncIterator[bytes]:
        """The current member's content."""
        while self._left:
            n = min(self._left, _CHUNK)
            data = await self._reader.read(n)
            if not data:
                raise TarError("tar stream ended in the middle of a member")
            self._left -= len(data)
            yield data
        if self._pad:
            await self._exact(self._pad)
            self._pad = 0

    async def read_all(self, limit: int) -> bytes:
        if self._left > limit:
            raise TarError(f"member larger than {limit} bytes")
        return b"".join([c async for c in self.chunks()])


def _pax(data: bytes) -> dict[str, str]:
    """PAX records: ``<len> <key>=<value>\\n``."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            raise TarError("bad PAX record") from None
        if length <= 0:
            raise TarError("bad PAX record")
        record = data[space + 1 : pos + length - 1]
        key, _, value = record.partition(b"=")
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out
