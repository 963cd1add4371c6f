"""The MSP's per-tenant backup repositories: where they are, their keys, and the MSP's own work on them.

Each tenant with an MSP repository has ``<repository_root>/<tenant id>/`` (restic's local layout,
mode 0700) and its own key: a random password in ``<state_dir>/repository-keys/<tenant id>.key``
(0600), never sent anywhere but inside a job's request over the tenant's own uplink.  With
3-2-1 on, ``<secondary_root>/<tenant id>/`` is a second repository with the same chunker
parameters (so copies deduplicate), filled by ``restic copy`` and verified.

Tenants only ever *add* (through :mod:`tenantry.director.repository.rest`); everything that
removes data runs here, at the MSP: retention (``forget`` + ``prune``), removing a job's partial
snapshots, ``check`` with a sampled ``--read-data-subset``, ``copy``.  A per-tenant
readers/writer gate keeps the MSP's maintenance (exclusive) apart from tenants' jobs (shared).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenantry.backup import restic
from tenantry.common import pki
from tenantry.director.repository.files import RepositoryDir
from tenantry.director.repository.store import RepositoryRow, RepositoryStore
from tenantry.director.store.db import Database

log = logging.getLogger(__name__)


class Gate:
    """Readers/writer lock: jobs share a repository, maintenance has it alone (writers go first)."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._writer and not self._waiting_writers)
            self._readers += 1
        try:
            yield
        finally:
            async with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._cond:
            self._waiting_writers += 1
            try:
                await self._cond.wait_for(lambda: not self._writer and not self._readers)
            finally:
                self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            async with self._cond:
                self._writer = False
                self._cond.notify_all()


@dataclass
class CopyResult:
    copied: int
    verified: bool
    missing: list[str]
    check: str


class Repositories:
    def __init__(
        self,
        db: Database,
        *,
        root: Path,
        secondary_root: Path | None,
        keys_dir: Path,
        cache_dir: Path,
        binary: str = "restic",
    ) -> None:
        self.store = RepositoryStore(db)
        self.root = root
        self.secondary_root = secondary_root
        self.keys_dir = keys_dir
        self.cache_dir = cache_dir
        self.binary = binary
        self._dirs: dict[str, RepositoryDir] = {}
        self._gates: dict[str, Gate] = {}
        self._init_locks: dict[str, asyncio.Lock] = {}

    # ------------------------------------------------------------------ places and keys
    def path(self, tenant_id: str, *, secondary: bool = False) -> Path:
        base = self.secondary_root if secondary else self.root
        if base is None:
            raise RuntimeError("no secondary repository root is configured (secondary_repository_root)")
        return base / tenant_id

    def password(self, tenant_id: str) -> str:
        key = self.keys_dir / f"{tenant_id}.key"
        if not key.exists():
            self.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            pki.write_private(key, (secrets.token_urlsafe(32) + "\n").encode())
        return key.read_text().strip()

    def restic_repo(self, tenant_id: str, *, secondary: bool = False) -> restic.Repo:
        return restic.Repo(
            str(self.path(tenant_id, secondary=secondary)),
            self.password(tenant_id),
            cache_dir=self.cache_dir,
            binary=self.binary,
        )

    def gate(self, tenant_id: str) -> Gate:
        return self._gates.setdefault(tenant_id, Gate())

    def row(self, tenant_id: str) -> RepositoryRow | None:
        return self.store.get(tenant_id)

    def directory(self, tenant_id: str) -> RepositoryDir:
        """The tenant's repository as the REST protocol sees it (append-only, with its quota)."""
        row = self.store.get(tenant_id)
        repo = self._dirs.get(tenant_id)
        if repo is None:
            repo = RepositoryDir(self.path(tenant_id))
            self._dirs[tenant_id] = repo
        repo.quota_bytes = row.quota_bytes if row is not None else None
        return repo

    # ------------------------------------------------------------------ lifecycle
    async def ensure(self, tenant_id: str) -> None:
        """Create the repository (and its secondary, when 3-2-1 is on) if it does not exist yet."""
        lock = self._init_locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            row = self.store.get(tenant_id) or self.store.upsert(tenant_id)
            primary = self.path(tenant_id)
            if not (primary / "config").exists():
                primary.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                primary.mkdir(mode=0o700, exist_ok=True)
                await restic.init(self.restic_repo(tenant_id))
                log.info("repository of tenant %s created in %s", tenant_id, primary)
            if row.secondary and self.secondary_root is not None:
                second = self.path(tenant_id, secondary=True)
                if not (second / "config").exists():
                    second.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                    second.mkdir(mode=0o700, exist_ok=True)
                    await restic.init(
                        self.restic_repo(tenant_id, secondary=True), copy_from=self.restic_repo(tenant_id)
                    )
            self.recount(tenant_id)

    def recount(self, tenant_id: str) -> int:
        used = self.directory(tenant_id).recount()
        fields: dict[str, Any] = {"used_bytes": used, "used_at": _now()}
        if self.secondary_root is not None and (self.path(tenant_id, secondary=True) / "config").exists():
            fields["secondary_used_bytes"] = RepositoryDir(self.path(tenant_id, secondary=True)).usage
        self.store.update(tenant_id, **fields)
        return used

    # ------------------------------------------------------------------ maintenance (under gate().exclusive())
    async def snapshots(self, tenant_id: str, *, secondary: bool = False) -> list[dict[str, Any]]:
        return await restic.snapshots(self.restic_repo(tenant_id, secondary=secondary), tags=["tenantry"])

    async def forget(self, tenant_id: str, ids: Sequence[str]) -> None:
        await restic.forget_ids(self.restic_repo(tenant_id), ids)

    async def retention(
        self, tenant_id: str, keep: dict[str, int], *, hosts: Sequence[str] = (), tags: Sequence[str] = ()
    ) -> list[str]:
        """``forget`` by policy (per VM: ``--group-by host``) then ``prune``; the snapshot ids removed."""
        repo = self.restic_repo(tenant_id)
        groups = await restic.forget(repo, keep, hosts=hosts, tags=["tenantry", *tags])
        removed = [str(s["id"]) for g in groups for s in (g.get("remove") or [])]
        if removed:
            await restic.prune(repo)
        self.store.update(tenant_id, last_retention_at=_now())
        self.recount(tenant_id)
        return removed

    async def check(self, tenant_id: str, subset: str | None, *, secondary: bool = False) -> tuple[bool, str]:
        try:
            out = await restic.check(self.restic_repo(tenant_id, secondary=secondary), read_data_subset=subset)
            ok, text = True, "".join(out)[-2000:]
        except restic.ResticError as exc:
            ok, text = False, str(exc)
        if not secondary:
            self.store.update(tenant_id, last_check_at=_now(), last_check_ok=int(ok), last_check_message=text[-2000:])
        return ok, text

    async def copy(self, tenant_id: str, subset: str | None) -> CopyResult:
        """3-2-1: copy every snapshot to the secondary repository, then verify the copy."""
        await self.ensure(tenant_id)
        primary, second = self.restic_repo(tenant_id), self.restic_repo(tenant_id, secondary=True)
        before = {s["id"] for s in await restic.snapshots(second)}
        try:
            await restic.copy(second, primary)
            source = await restic.snapshots(primary)
            copies = await restic.snapshots(second)
            have = {str(s.get("original") or s["id"]) for s in copies}
            missing = sorted(str(s["id"]) for s in source if s["id"] not in have)
            ok, text = await self.check(tenant_id, subset, secondary=True)
            verified = ok and not missing
            message = (
                "verified" if verified else f"{len(missing)} snapshot(s) missing in the copy; check: {text[-500:]}"
            )
        except restic.ResticError as exc:
            copies, missing, verified, message = [], [], False, str(exc)
        self.store.update(tenant_id, last_copy_at=_now(), last_copy_ok=int(verified), last_copy_message=message[-2000:])
        self.recount(tenant_id)
        return CopyResult(
            copied=len({s["id"] for s in copies} - before), verified=verified, missing=missing, check=message
        )

    def remove_locks(self, tenant_id: str, names: Sequence[str]) -> int:
        """Remove lock files a tenant's restic left behind (a killed job); returns how many."""
        repo = self.directory(tenant_id)
        removed = 0
        for name in names:
            with contextlib.suppress(Exception):
                repo.delete("locks", name, by_tenant=False)
                removed += 1
        return removed


def _now() -> float:
    import time

    return time.time()
