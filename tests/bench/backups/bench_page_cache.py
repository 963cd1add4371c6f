"""What writing staged segments costs in this machine's page cache: new files vs files written over, by write size.

    .venv/bin/python tests/bench/backups/bench_page_cache.py [--mib 1024] [--dir DIR] [--write-kib 256] [--sweep]

Writes ``--mib`` MiB as 4 MiB files (the backup's segments) three ways, in writes of ``--write-kib`` KiB
(default: the services' own, :data:`tenantry.common.memory.FILE_WRITE`), and prints the CPU seconds of each:
new files (twice: the first run takes pages the guest may have handed back to its host, the second reuses
pages freed a moment ago), then the same files written over in place (the Transporter's spares).

``--after-free S [S ...]``: 4 GiB of files written and deleted, then ``--mib`` MiB of new files in 4 MiB writes
after a pause of S seconds: how long freed memory stays warm (the guest reports it to its host in rounds).

``--sweep``: new files only, in writes of 4096, 2048, 1024, 512, 256 and 64 KiB, each after
``SETTLE`` seconds of quiet (memory free that long has been handed back to the host), with each figure's ratio
to the services' write size.  The kernel gives a file folios as large as each write (ext4's large folios),
and a 2 MiB folio comes from the 2 MiB blocks the guest reported free to its host.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from tenantry.common.memory import FILE_WRITE, write_file

SEGMENT = 4 << 20
SETTLE = 45.0


def _write(directory: Path, count: int, data: bytes, *, over: bool, piece: int) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.monotonic()
    for i in range(count):
        path = directory / f"s{i}"
        if over:
            fd = os.open(path, os.O_WRONLY)
        else:
            path.unlink(missing_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            write_file(fd, data, piece)
        finally:
            os.close(fd)
    return time.process_time() - cpu, time.monotonic() - wall


def _empty(directory: Path) -> None:
    for p in directory.iterdir():
        p.unlink()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--dir", type=Path, help="where to write (default: a temporary directory, removed)")
    parser.add_argument("--write-kib", type=int, default=FILE_WRITE >> 10, help="the size of each write")
    parser.add_argument("--sweep", action="store_true", help="new files in cold memory, by write size")
    parser.add_argument(
        "--after-free",
        type=float,
        nargs="+",
        metavar="SECONDS",
        help="4 GiB written and deleted, then new files in 4 MiB writes after each of these pauses",
    )
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="bench-page-cache-"))
    directory.mkdir(parents=True, exist_ok=True)
    count = args.mib * (1 << 20) // SEGMENT
    gib = args.mib / 1024
    data = os.urandom(SEGMENT)
    try:
        if args.after_free:
            for pause in args.after_free:
                _empty(directory)
                _write(directory, 1024, data, over=False, piece=SEGMENT)
                _empty(directory)
                time.sleep(pause)
                cpu, _wall = _write(directory, count, data, over=False, piece=SEGMENT)
                print(f"new files {pause:4.0f} s after 4 GiB were freed: {cpu / gib:.2f} CPU seconds per GiB")
                _empty(directory)
                time.sleep(SETTLE)  # the next pause starts from cold memory
            return
        if args.sweep:
            figures: dict[int, float] = {}
            for kib in (4096, 2048, 1024, 512, FILE_WRITE >> 10, 64):
                _empty(directory)
                time.sleep(SETTLE)
                cpu, _wall = _write(directory, count, data, over=False, piece=kib << 10)
                figures[kib] = cpu
            base = figures[FILE_WRITE >> 10]
            for kib, cpu in figures.items():
                print(
                    f"new files, {kib:4d} KiB writes: {cpu / gib:.2f} CPU seconds per GiB "
                    f"({cpu / base:.1f}x the {FILE_WRITE >> 10} KiB writes)"
                )
            return
        piece = args.write_kib << 10
        for label, over in (("new files", False), ("new files again", False), ("written over", True)):
            cpu, wall = _write(directory, count, data, over=over, piece=piece)
            print(f"{label:16s} {args.mib} MiB in {args.write_kib} KiB writes: {cpu:.2f} CPU seconds, {wall:.2f} s")
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
