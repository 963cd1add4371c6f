"""Driving the ``restic`` binary (Debian's restic 0.14): the storage engine of every backup.

restic does the content-defined chunking, deduplication, compression, authenticated
encryption, ``check``, ``forget``/``prune`` and ``copy``; this module only starts it with the
right repository, password and flags and reads its JSON output.  The password never appears in
argv or the environment: it is written into a pipe whose read end restic gets as
``--password-file /dev/fd/N``.  The repository URL (it may hold a per-job token) goes in the
environment (``RESTIC_REPOSITORY``), which only the same user can read.

A cancelled call stops restic with SIGINT (restic removes its lock on the way out), then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]
_STDERR_TAIL = 4000


class ResticError(RuntimeError):
    """restic failed; ``str()`` is its own last words (never the password)."""

    def __init__(self, what: str, code: int | None, stderr: str) -> None:
        tail = stderr.strip()[-1500:]
        super().__init__(f"restic {what} failed (exit {code}): {tail or 'no output'}")
        self.code = code
        self.stderr = stderr


@dataclass(frozen=True)
class Repo:
    """Where a repository is and how to open it."""

    location: str  # a local directory or rest:http://user:token@host:port/
    password: str = field(repr=False)
    cache_dir: Path | None = None
    binary: str = "restic"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESTIC_")}
        env["RESTIC_REPOSITORY"] = self.location
        env.setdefault("HOME", "/nonexistent")
        if self.cache_dir is not None:
            env["RESTIC_CACHE_DIR"] = str(self.cache_dir)
        return env


def _die_with_parent() -> None:
    """In the child before exec: SIGINT when our process dies, so no restic outlives a killed service."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _Secrets:
    """Pipes that hand passwords to restic as /dev/fd/N files."""

    def __init__(self) -> None:
        self.fds: list[int] = []

    def file(self, secret: str) -> str:
        read, write = os.pipe()
        try:
            os.write(write, secret.encode() + b"\n")  # far below the pipe buffer: never blocks
        finally:
            os.close(write)
        self.fds.append(read)
        return f"/dev/fd/{read}"

    def close(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()


def _global_flags(repo: Repo, secrets: _Secrets) -> list[str]:
    flags = ["--password-file", secrets.file(repo.password)]
    if repo.cache_dir is None:
        flags.append("--no-cache")
    return flags


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


async def _drain(stream: asyncio.StreamReader | None, sink: list[str]) -> None:
    if stream is None:
        return
    size = 0
    while True:
        line = await stream.readline()
        if not line:
            return
        text = line.decode("utf-8", "replace")
        sink.append(text)
        size += len(text)
        while size > _STDERR_TAIL and len(sink) > 1:
            size -= len(sink.pop(0))


async def run(
    repo: Repo,
    args: Sequence[str],
    *,
    what: str,
    stdin: int | None = None,
    on_json: Progress | None = None,
    ok_codes: Sequence[int] = (0,),
    extra_env: dict[str, str] | None = None,
    from_repo: Repo | None = None,
    cwd: Path | None = None,
) -> list[str]:
    """Run ``restic <args>``; returns stdout lines (each JSON line also goes to ``on_json``)."""
    secrets = _Secrets()
    argv = [repo.binary, *_global_flags(repo, secrets)]
    env = repo.env() | (extra_env or {})
    if from_repo is not None:
        argv += ["--from-password-file", secrets.file(from_repo.password)]
        env["RESTIC_FROM_REPOSITORY"] = from_repo.location
    argv += list(args)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=stdin if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            pass_fds=secrets.fds,
            limit=1 << 20,
            cwd=cwd,
            preexec_fn=_die_with_parent,
        )
    finally:
        secrets.close()
    out: list[str] = []
    err: list[str] = []
    err_task = asyncio.ensure_future(_drain(proc.stderr, err))
    try:
        assert proc.stdout is not None
        while True:
            line = await proc.stdout.readline()
            if not line:
                break
            text = line.decode("utf-8", "replace")
            out.append(text)
            if on_json is not None and text.startswith("{"):
                with contextlib.suppress(ValueError):
                    on_json(json.loads(text))
        code = await proc.wait()
        await err_task
    except BaseException:
        await _stop(proc)
        err_task.cancel()
        raise
    if code not in ok_codes:
        raise ResticError(what, code, "".join(err))
    return out


async def run_json(repo: Repo, args: Sequence[str], *, what: str, **kwargs: Any) -> Any:
    """Run a restic command with ``--json`` that prints one JSON document."""
    lines = await run(repo, ["--json", *args], what=what, **kwargs)
    text = "".join(line for line in lines if line.strip().startswith(("[", "{")))
    try:
        return json.loads(text) if text else None
    except ValueError as exc:
        raise ResticError(what, 0, f"unreadable JSON output: {exc}") from None


# ---------------------------------------------------------------------- commands
async def init(repo: Repo, *, copy_from: Repo | None = None) -> None:
    args = ["init", "--repository-version", "2"]
    if copy_from is not None:
        args.append("--copy-chunker-params")  # the same chunks, so a copy deduplicates
    await run(repo, args, what="init", from_repo=copy_from)


async def snapshots(repo: Repo, *, tags: Sequence[str] = (), hosts: Sequence[str] = ()) -> list[dict[str, Any]]:
    args = ["snapshots", "--no-lock"]
    for tag in tags:
        args += ["--tag", tag]
    for host in hosts:
        args += ["--host", host]
    found = await run_json(repo, args, what="snapshots")
    return list(found or [])


async def backup(
    repo: Repo,
    paths: Sequence[str],
    *,
    host: str,
    tags: Sequence[str] = (),
    parent: str | None = None,
    flags: Sequence[str] = (),
    on_progress: Progress | None = None,
    time: str | None = None,
    cwd: Path | None = None,
) -> dict[str, Any]:
    """``restic backup``; the summary (``snapshot_id``, ``data_added``, ``files_*``, ...)."""
    args = ["--json", "backup", "--host", host, *flags]
    for tag in tags:
        args += ["--tag", tag]
    if parent:
        args += ["--parent", parent]
    if time:
        args += ["--time", time]
    summary: dict[str, Any] = {}

    def seen(msg: dict[str, Any]) -> None:
        if msg.get("message_type") == "summary":
            summary.update(msg)
        elif on_progress is not None:
            on_progress(msg)

    await run(repo, [*args, *paths], what="backup", on_json=seen, cwd=cwd)
    if not summary.get("snapshot_id"):
        raise ResticError("backup", 0, "no snapshot was created")
    return summary


@contextlib.asynccontextmanager
async def dump(repo: Repo, snapshot: str, path: str) -> AsyncIterator[asyncio.StreamReader]:
    """``restic dump SNAPSHOT PATH``: a directory comes out as a tar stream on the reader."""
    secrets = _Secrets()
    argv = [repo.binary, *_global_flags(repo, secrets), "--no-lock", "dump", snapshot, path]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=repo.env(),
            pass_fds=secrets.fds,
            limit=1 << 22,
            preexec_fn=_die_with_parent,
        )
    finally:
        secrets.close()
    err: list[str] = []
    err_task = asyncio.ensure_future(_drain(proc.stderr, err))
    assert proc.stdout is not None
    try:
        yield proc.stdout
        code = await proc.wait()
        await err_task
    except BaseException:
        await _stop(proc)
        err_task.cancel()
        raise
    if code != 0:
        raise ResticError("dump", code, "".join(err))


async def restore(repo: Repo, snapshot: str, target: Path, includes: Sequence[str] = ()) -> None:
    """``restic restore SNAPSHOT --target DIR [--include PATH ...]`` (parallel pack downloads)."""
    args = ["restore", "--no-lock", snapshot, "--target", str(target)]
    for path in includes:
        args += ["--include", path]
    await run(repo, args, what="restore")


async def forget(
    repo: Repo,
    keep: dict[str, int],
    *,
    tags: Sequence[str] = (),
    hosts: Sequence[str] = (),
    group_by: str = "host",
    dry_run: bool = False,
) -> list[dict[str, Any]]:
    """``restic forget`` with ``--keep-<what> N``; the groups with their ``keep`` and ``remove`` lists."""
    args = ["forget", "--group-by", group_by]
    for what, n in keep.items():
        if n:
            args += [f"--keep-{what}", str(n)]
    for tag in tags:
        args += ["--tag", tag]
    for host in hosts:
        args += ["--host", host]
    if dry_run:
        args.append("--dry-run")
    found = await run_json(repo, args, what="forget")
    return list(found or [])


async def forget_ids(repo: Repo, ids: Sequence[str]) -> None:
    if ids:
        await run(repo, ["forget", *ids], what="forget")


async def prune(repo: Repo) -> list[str]:
    return await run(repo, ["prune"], what="prune")


async def check(repo: Repo, *, read_data_subset: str | None = None) -> list[str]:
    args = ["check"]
    if read_data_subset:
        args += ["--read-data-subset", read_data_subset]
    return await run(repo, args, what="check")


async def copy(dest: Repo, source: Repo, ids: Sequence[str] = ()) -> list[str]:
    return await run(dest, ["copy", *ids], what="copy", from_repo=source)


async def unlock(repo: Repo) -> None:
    await run(repo, ["unlock"], what="unlock")


async def stats(repo: Repo, mode: str = "raw-data") -> dict[str, Any]:
    found = await run_json(repo, ["stats", "--no-lock", "--mode", mode], what="stats")
    return dict(found or {})


def available(binary: str = "restic") -> bool:
    from shutil import which

    return which(binary) is not None
