"""Many real Transporters in one process: the enrollment and uplink code of ``tenantry.transporter``.

Real Transporters are one process per client site; for tests and benchmarks with dozens or
thousands of them, one asyncio process runs many ``UplinkClient``s, each with its own state
directory (certificate, key, settings), exactly as a Transporter process would.

    python fleet.py ROOT [--go FILE]    # run every enrolled state directory under ROOT
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import json
import logging
import sys
from pathlib import Path


def enroll_all(keys: list[str], root: Path, director_url: str, threads: int = 8) -> list[Path]:
    """Enroll one state directory per key under ``root`` (``t0``, ``t1``, ...); the directories."""
    from tenantry.protocol.enrollment import EnrollmentKey
    from tenantry.transporter.config import StateDir
    from tenantry.transporter.enroll import enroll_sync

    def one(item: tuple[int, str]) -> Path:
        i, key = item
        sd = StateDir(root / f"t{i}")
        if not sd.enrolled:
            enroll_sync(sd, EnrollmentKey.decode(key), director_url)
        return sd.path

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, enumerate(keys)))


class ReconnectTally(logging.Handler):
    """Why the uplinks went down and how long they waited before trying again, for benchmarks.

    Reads the Transporter's own "uplink down (reason); reconnecting in N s" log records and rewrites
    ``path`` (JSON) every second: a worker is killed at the end of a benchmark, never asked to exit.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(logging.INFO)
        self.path = path
        self.reasons: collections.Counter[str] = collections.Counter()
        self.delays: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("uplink down") and isinstance(record.args, tuple) and len(record.args) == 2:
            reason, delay = record.args
            self.reasons[str(reason)[:80]] += 1
            self.delays.append(float(delay))  # type: ignore[arg-type]

    async def keep_writing(self) -> None:
        while True:
            self.path.write_text(json.dumps({"reasons": dict(self.reasons), "delays": self.delays}))
            await asyncio.sleep(1.0)


async def run(root: Path, go: Path | None = None, backoff_base: float = 1.0, tally: Path | None = None) -> None:
    from tenantry.transporter.config import StateDir, TransporterConfig
    from tenantry.transporter.site import Site
    from tenantry.transporter.uplink import UplinkClient

    clients = []
    for path in sorted(p for p in root.iterdir() if p.is_dir()):
        sd = StateDir(path)
        state = sd.load()
        site = Site(TransporterConfig(state_dir=sd.path), sd, state.tenant_id, state.settings)
        client = UplinkClient(sd, state, site, backoff_base=backoff_base)
        # A running Transporter has its TLS context loaded already: load them all before the start
        # signal, or thousands of them in one process would spend their first seconds loading files
        # while the Director waits for their handshakes.
        client.context()
        clients.append(client)
    if go is not None:
        (root.parent / f"{root.name}.ready").touch()
        while not go.exists():
            await asyncio.sleep(0.05)
    if tally is not None:
        handler = ReconnectTally(tally)
        uplink_log = logging.getLogger("tenantry.transporter.uplink")
        uplink_log.setLevel(logging.INFO)
        uplink_log.propagate = False  # counted, not printed
        uplink_log.addHandler(handler)
        writer = asyncio.ensure_future(handler.keep_writing())
    await asyncio.gather(*(c.run_forever() for c in clients))
    if tally is not None:
        writer.cancel()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("root", type=Path)
    p.add_argument("--go", type=Path)
    p.add_argument("--backoff-base", type=float, default=1.0)
    p.add_argument("--log-level", default="WARNING")
    p.add_argument("--tally", type=Path, help="keep why and for how long the uplinks went down here (JSON)")
    args = p.parse_args()
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(run(args.root, args.go, args.backoff_base, args.tally))


if __name__ == "__main__":
    main()
