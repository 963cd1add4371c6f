"""One tenant's restic repository on disk, in restic's own local layout, with the MSP's rules.

The directory is exactly what ``restic init`` makes for a local repository (``config``,
``data/<xx>/<id>``, ``index/``, ``keys/``, ``locks/``, ``snapshots/``), so the MSP's own
maintenance (retention, ``check``, ``copy``, restores into production) runs plain ``restic``
on it.  What a tenant may do through the REST protocol is decided here, never by the tenant:

* **append-only**: a file is written once (temporary file, then linked into place; an existing
  name is never replaced) and nothing is deleted, except the lock files this tenant's own
  restic created (tracked in :attr:`RepositoryDir.tenant_locks`), so a compromised client site
  can add backups but not remove or rewrite one, and cannot break the MSP's own locks;
* **content-addressed**: every file but ``config`` is named by the SHA-256 of its content
  (restic's storage ID); an upload whose content does not match its name is refused;
* **quota**: bytes on disk plus bytes being uploaded may not exceed the tenant's quota; the
  excess upload is refused before a byte is written (HTTP 507).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tenantry.common.memory import write_file

TYPES = ("data", "keys", "locks", "snapshots", "index")
_NAME = re.compile(r"^[0-9a-f]{64}$")
INCOMING = ".incoming"  # temporary uploads (not part of restic's layout; restic ignores it)


class RepositoryError(Exception):
    """A request the repository refuses; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class QuotaExceeded(RepositoryError):
    def __init__(self, message: str) -> None:
        super().__init__(507, message)


def valid_name(name: str) -> bool:
    return bool(_NAME.match(name))


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


@dataclass
class RepositoryDir:
    """A repository directory; usage is counted once, then kept up to date by every change made here."""

    root: Path
    quota_bytes: int | None = None
    append_only: bool = True
    tenant_locks: set[str] = field(default_factory=set)
    _usage: int | None = None
    _reserved: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ layout
    def path_of(self, kind: str, name: str) -> Path:
        if kind == "config":
            return self.root / "config"
        if kind not in TYPES or not valid_name(name):
            raise RepositoryError(404, f"no such file type or name: {kind}/{name[:70]}")
        if kind == "data":
            return self.root / "data" / name[:2] / name
        return self.root / kind / name

    @property
    def initialized(self) -> bool:
        return (self.root / "config").is_file()

    def exists(self, kind: str, name: str) -> int | None:
        """The size of the file, or ``None``."""
        try:
            return self.path_of(kind, name).stat().st_size
        except FileNotFoundError:
            return None

    def listing(self, kind: str) -> list[tuple[str, int]]:
        if kind not in TYPES:
            raise RepositoryError(404, f"no such file type: {kind[:20]}")
        base = self.root / kind
        dirs = [base / d for d in sorted(os.listdir(base))] if kind == "data" and base.is_dir() else [base]
        out: list[tuple[str, int]] = []
        for d in dirs:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError), os.scandir(d) as it:
                for entry in it:
                    if valid_name(entry.name) and entry.is_file(follow_symlinks=False):
                        out.append((entry.name, entry.stat(follow_symlinks=False).st_size))
        return out

    # ------------------------------------------------------------------ usage and quota
    @property
    def usage(self) -> int:
        """Bytes in the repository's files (counted on first use, then kept up to date)."""
        with self._lock:
            if self._usage is None:
                self._usage = sum(size for _p, size in self._walk())
            return self._usage

    def recount(self) -> int:
        """Count again (after the MSP's own restic changed the directory)."""
        with self._lock:
            self._usage = None
        return self.usage

    def _walk(self) -> Iterator[tuple[Path, int]]:
        for dirpath, dirnames, filenames in os.walk(self.root):
            if INCOMING in dirnames:
                dirnames.remove(INCOMING)
            for name in filenames:
                p = Path(dirpath) / name
                with contextlib.suppress(FileNotFoundError):
                    yield p, p.stat().st_size

    def reserve(self, length: int) -> None:
        usage = self.usage
        with self._lock:
            if self.quota_bytes is not None and usage + self._reserved + length > self.quota_bytes:
                raise QuotaExceeded(
                    f"repository quota of {human(self.quota_bytes)} exceeded: {human(usage)} stored, "
                    f"{human(self._reserved)} arriving, this upload of {human(length)} refused"
                )
            self._reserved += length

    def release(self, length: int) -> None:
        with self._lock:
            self._reserved -= length

    def _account(self, delta: int) -> None:
        with self._lock:
            if self._usage is not None:
                self._usage += delta

    # ------------------------------------------------------------------ writing
    def begin_upload(self, kind: str, name: str, length: int | None) -> Upload:
        """Start an upload; ``length`` (Content-Length) is reserved against the quota up front."""
        dest = self.path_of(kind, name)
        if kind == "config" and dest.exists():
            raise RepositoryError(403, "the repository configuration exists and is never replaced")
        if self.append_only and kind == "config":
            raise RepositoryError(403, "repositories are created by the MSP")
        incoming = self.root / INCOMING
        incoming.mkdir(mode=0o700, exist_ok=True)
        reserved = length or 0
        if reserved:
            self.reserve(reserved)
        tmp = incoming / f"{name[:16] if kind != 'config' else 'config'}.{secrets.token_hex(8)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            self.release(reserved)
            raise
        return Upload(self, kind, name, dest, tmp, fd, reserved)

    # ------------------------------------------------------------------ deleting
    def delete(self, kind: str, name: str, *, by_tenant: bool) -> None:
        path = self.path_of(kind, name)
        if by_tenant and self.append_only:
            if kind != "locks":
                raise RepositoryError(403, f"append-only repository: {kind} files are never deleted by a tenant")
            if name not in self.tenant_locks:
                raise RepositoryError(403, "append-only repository: only locks this tenant created may be removed")
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            raise RepositoryError(404, f"{kind}/{name} not found") from None
        self.tenant_locks.discard(name)
        self._account(-size)


class Upload:
    """One file being written: streamed into a temporary file, verified, then linked into place."""

    def __init__(self, repo: RepositoryDir, kind: str, name: str, dest: Path, tmp: Path, fd: int, reserved: int):
        self.repo = repo
        self.kind = kind
        self.name = name
        self.dest = dest
        self.tmp = tmp
        self.fd = fd
        self.reserved = reserved
        self.size = 0
        self._hash = hashlib.sha256()
        self._closed = False

    def write_many(self, chunks: list[bytes | bytearray | memoryview]) -> None:
        for data in chunks:
            self.write(data)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.size += len(data)
        if self.size > self.reserved:
            # No Content-Length (or a longer body than declared): reserve as it grows.
            more = max(self.size - self.reserved, 1 << 20)
            self.repo.reserve(more)
            self.reserved += more
        self._hash.update(data)
        write_file(self.fd, data)

    def sync(self) -> None:
        """Make the bytes durable (called in a worker thread before :meth:`commit`)."""
        os.fsync(self.fd)

    def commit(self) -> bool:
        """Link the file into place; ``False`` when an identical file was there already."""
        try:
            if self.kind != "config" and self._hash.hexdigest() != self.name:
                raise RepositoryError(400, f"content of {self.kind}/{self.name[:12]}… does not match its name")
            self.dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                os.link(self.tmp, self.dest)  # never replaces: an existing name fails
            except FileExistsError:
                if self.kind == "config":
                    raise RepositoryError(403, "the repository configuration exists and is never replaced") from None
                return False  # same name, verified same content: nothing to do (a retried upload)
            if self.kind == "locks":
                self.repo.tenant_locks.add(self.name)
            self.repo._account(self.size)
            return True
        finally:
            self.abort()

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            os.close(self.fd)
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()
        self.repo.release(self.reserved)
