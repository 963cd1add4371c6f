"""What writing staged segments costs in this machine's page cache: new files vs files written over.

    .venv/bin/python tests/bench/backups/bench_page_cache.py [--mib 1024] [--dir DIR]

Writes ``--mib`` MiB as 4 MiB files (the backup's segments) three ways and prints the CPU seconds of each:
new files (twice: the first run takes pages the guest may have handed back to its host, the second reuses
pages freed a moment ago), then the same files written over in place (the Transporter's spares).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

SEGMENT = 4 << 20


def _write(directory: Path, count: int, data: bytes, *, over: bool) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.monotonic()
    for i in range(count):
        path = directory / f"s{i}"
        if over:
            fd = os.open(path, os.O_WRONLY)
        else:
            path.unlink(missing_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    return time.process_time() - cpu, time.monotonic() - wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--dir", type=Path, help="where to write (default: a temporary directory, removed)")
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="bench-page-cache-"))
    directory.mkdir(parents=True, exist_ok=True)
    count = args.mib * (1 << 20) // SEGMENT
    data = os.urandom(SEGMENT)
    try:
        for label, over in (("new files", False), ("new files again", False), ("written over", True)):
            cpu, wall = _write(directory, count, data, over=over)
            print(f"{label:16s} {args.mib} MiB: {cpu:.2f} CPU seconds, {wall:.2f} s")
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
