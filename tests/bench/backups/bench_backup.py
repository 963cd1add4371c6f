"""Backup throughput through the whole path vs plain restic, incrementals, changed-block tracking, restore.

    .venv/bin/python tests/bench/backups/bench_backup.py [--gib 4] [--keep DIR] [--full-and-restore] [--profile DIR]
        [--staging-mib 512]

Everything real on this machine: the client site's vCenter simulator with one VM whose disk holds
``--gib`` GiB (40 % incompressible, 40 % text-like, 20 % zeros), a Director and an enrolled
Transporter (processes, TLS uplink), restic 0.14 at both ends.  Figures and ratios of one run:

1. full backup of the VM through the whole path (snapshot, datastore HTTP read, segments, restic at
   the site, relay, carriers on the uplink, the Director's REST server) vs ``restic backup`` of the
   same bytes (the disk's file) into a local repository (target ratio >= 0.7);
2. 1 % of the disk changed in 16 contiguous regions: bytes on the uplink (<= 3 % of the disk) and
   time (<= 0.5x the full backup);
3. the same with 1 % changed as scattered 4 KiB writes: what it costs, and why;
4. changed-block tracking on: a full, then 1 % in 16 regions, reading only the changed areas
   (<= 0.2x the full time);
5. restore of the VM to the site (restic restore through the uplink, datastore upload, register) vs
   ``restic restore`` from the local repository (target ratio >= 0.7).

Each baseline is measured in the same run, once before and once right after what it is compared
with, and the mean is the baseline (the machine's load drifts).  Every measured operation starts
after ``SETTLE`` (40) seconds of quiet, so that none inherits the warm memory the one before freed.
``--full-and-restore`` runs only 1 and 5 (one VM to seed instead of two: about half the time).
``--profile DIR``: during 1 and 5, py-spy samples the Director and the Transporter (Python and native frames,
``<phase>-<process>.txt``, collapsed stacks) and ``perf record -a`` the whole machine (``<phase>.perf.data``;
``perf report --sort pid,dso`` splits the CPU by process and library: TLS, hashing, copies, restic, the
simulator). ``--staging-mib``: the Transporter's staging budget (default 512, the Transporter's own default);
``--staging-dir``: its staging directory (default: in the work directory).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2]))  # tests/ (integration.services.services_harness)
sys.path.insert(0, str(HERE.parents[2] / "integration" / "backups"))

from backuplab import BackupLab, start_lab  # noqa: E402

from tenantry.lab import Simulator, build  # noqa: E402
from tenantry.lab import client as site_vms  # noqa: E402

MIB = 1 << 20
# Seconds between polls of a run's state.  Each poll is a new HTTPS connection to the Director (a TLS
# handshake and a FastAPI request): at the tests' 0.1 s that was ~17 % of the Director's CPU during a
# backup, competing with what is measured.  The run's duration is the Transporter's own figure, so
# polling once a second does not round it.
POLL = 1.0
# Seconds of quiet before each measured operation.  This VM's guest hands the memory it frees back to its
# host (virtio_balloon free page reporting), in rounds: after 4 GiB were freed, new files cost 0.33 CPU-seconds
# per GiB 6 s later, 1.0 after 15 s, 3.2 (cold) after 30 s (``bench_page_cache.py --after-free 6 15 30``).
# Without a pause, each operation inherits the warm pages the one before freed (a plain restic restore right
# after the path's restore, whose staging was just deleted, ran in 9-10 s instead of 14-16): with it, every
# operation, baseline or path, starts from the same cold memory.
SETTLE = 40.0


def _settle() -> None:
    time.sleep(SETTLE)


def _cpu(pid: int) -> tuple[float, float]:
    """(own, waited-for children) CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def _uptime() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def _profiled(out: Path | None, phase: str, pids: dict[str, int]) -> Iterator[None]:
    """Sample ``pids`` with py-spy and the whole machine with perf while the block runs (``out``: None, off)."""
    if out is None:
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    for name, pid in pids.items():
        if name == "simulator":
            continue  # Go: perf sees it
        dest = out / f"{phase}-{name.split()[0]}.txt"
        cmd = [spy, "record", "--pid", str(pid), "--native", "--format", "raw", "--rate", "50"]
        procs.append(subprocess.Popen([*cmd, "-o", str(dest)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    if shutil.which("perf"):
        cmd = ["perf", "record", "-a", "-F", "199", "-o", str(out / f"{phase}.perf.data")]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    (out / f"{phase}-pids.json").write_text(json.dumps(pids))
    try:
        yield
    finally:
        for proc in procs:
            proc.send_signal(2)  # SIGINT: both write their output and stop
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def _plain_backup(flat: Path, work: Path, name: str) -> tuple[float, float]:
    """``restic backup`` of the disk file into a new local repository: (seconds, CPU seconds)."""
    repo = work / name
    shutil.rmtree(repo, ignore_errors=True)
    env = {
        **os.environ,
        "RESTIC_PASSWORD": "bench",
        "RESTIC_REPOSITORY": str(repo),
        "RESTIC_CACHE_DIR": str(work / "c"),
    }
    subprocess.run(["restic", "init", "--repository-version", "2", "-q"], env=env, check=True)
    _settle()
    cpu = _children_cpu()
    t = time.monotonic()
    subprocess.run(["restic", "backup", "-q", "--host", "bench", flat.name], env=env, check=True, cwd=flat.parent)
    return time.monotonic() - t, _children_cpu() - cpu


def _plain_restore(work: Path) -> tuple[float, float]:
    """``restic restore latest`` from the local repository into a new directory: (seconds, CPU seconds)."""
    env = {
        **os.environ,
        "RESTIC_PASSWORD": "bench",
        "RESTIC_REPOSITORY": str(work / "plain-repo"),
        "RESTIC_CACHE_DIR": str(work / "c"),
    }
    out = work / "plain-restore"
    shutil.rmtree(out, ignore_errors=True)
    _settle()
    cpu = _children_cpu()
    t = time.monotonic()
    subprocess.run(["restic", "restore", "latest", "-q", "--target", str(out)], env=env, check=True)
    seconds = time.monotonic() - t
    shutil.rmtree(out, ignore_errors=True)
    return seconds, _children_cpu() - cpu


def _plain_restic(flat: Path, work: Path) -> tuple[float, float, int]:
    repo = work / "plain-repo"
    backup, cpu = _plain_backup(flat, work, "plain-repo")
    print(f"   (plain restic backup used {cpu:.1f} CPU seconds)")
    restore, rcpu = _plain_restore(work)
    print(f"   (plain restic restore: {restore:.1f} s, {rcpu:.1f} CPU seconds)")
    size = sum(p.stat().st_size for p in repo.rglob("*") if p.is_file())
    return backup, restore, size


def _datastore_file(lab: BackupLab, vm: str) -> Path:
    from pyVim.connect import Disconnect, SmartConnect

    si = SmartConnect(
        host=lab.site.hostname,
        port=lab.site.port,
        user=lab.site.username,
        pwd=lab.site.password,
        sslContext=lab.site.ssl_context(),
    )
    try:
        ds = si.RetrieveContent().searchIndex.FindByInventoryPath(f"site/vm/{vm}").datastore[0]
        return Path(ds.info.url) / vm / f"{vm}-flat.vmdk"
    finally:
        Disconnect(si)


def _regions(lab: BackupLab, vm: str, disk: int, count: int, total: int, seed: int) -> None:
    size = total // count
    rng = random.Random(seed)
    step = disk // count
    for i in range(count):
        offset = i * step + rng.randrange(0, step - size)
        site_vms.guest_write(lab.site, vm, offset, rng.randbytes(size))


def _scattered(lab: BackupLab, vm: str, disk: int, total: int, seed: int) -> int:
    rng = random.Random(seed)
    writes = total // 4096
    for _ in range(writes):
        site_vms.guest_write(lab.site, vm, rng.randrange(0, disk // 4096) * 4096, rng.randbytes(4096))
    return writes


def _vm(run: dict[str, object], vm: str) -> dict[str, object]:
    detail = run["detail"]
    assert isinstance(detail, dict)
    result = detail["vms"][vm]
    assert isinstance(result, dict)
    if not result.get("ok"):
        raise SystemExit(f"backup failed: {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=4.0)
    parser.add_argument("--keep", type=Path, help="work directory to keep (default: a temporary one, removed)")
    parser.add_argument(
        "--full-and-restore",
        action="store_true",
        help="only the full backup (1) and the restore (5) with their baselines",
    )
    parser.add_argument("--profile", type=Path, help="sample the processes during 1 and 5 into this directory")
    parser.add_argument(
        "--staging-mib", type=int, default=512, help="the Transporter's staging budget (its default: 512)"
    )
    parser.add_argument(
        "--staging-dir", type=Path, help="the Transporter's staging directory (default: in the work directory)"
    )
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-backup-"))
    work.mkdir(parents=True, exist_ok=True)
    disk = int(args.gib * 1024) * MIB
    print(f"load before: {_uptime()}  (2 shared cores; other work on the machine skews timings)")
    with Simulator(build()) as sim:
        site = sim.start("client", work / "lab", "client", hosts=1)
        t = time.monotonic()
        vms = ["bench-vm"] if args.full_and_restore else ["bench-vm", "bench-cbt"]
        site_vms.seed(site, vms, disk_mib=disk // MIB)
        print(
            f"client site: {len(vms)} VM(s) with {disk / (1 << 30):.1f} GiB disks written in "
            f"{time.monotonic() - t:.1f} s; load {_uptime()}"
        )
        (work / "services").mkdir(exist_ok=True)
        staging = args.staging_mib * MIB
        lab = start_lab(
            work / "services",
            site,
            staging_bytes=staging,
            staging_dir=args.staging_dir,
            seeds={"heartbeat_interval": 15.0},
        )
        try:
            flat = _datastore_file(lab, "bench-vm")
            plain_backup, plain_restore, plain_size = _plain_restic(flat, work)
            print(
                f"plain restic backup of the disk file into a local repository: {plain_backup:.1f} s "
                f"({disk / MIB / plain_backup:.0f} MiB/s), repository {plain_size / MIB:.0f} MiB"
            )

            lab.job("bench", ["bench-vm"])
            pids = {
                "director": lab.director.proc.pid,
                "transporter (+restic)": lab.transporter.proc.pid,  # type: ignore[union-attr]
                "simulator": site.pid,
            }
            _settle()
            before = {k: _cpu(v) for k, v in pids.items()}
            print(f"load before the full backup: {_uptime()}")
            with _profiled(args.profile, "backup", pids):
                full = _vm(lab.run("bench", timeout=7200, poll=POLL), "bench-vm")
            cpu = {k: (_cpu(v)[0] - before[k][0], _cpu(v)[1] - before[k][1]) for k, v in pids.items()}
            again, _c = _plain_backup(flat, work, "plain-repo-2")
            mean = (plain_backup + again) / 2
            print(f"plain restic backup again, right after: {again:.1f} s; baseline = the mean, {mean:.1f} s")
            plain_backup = mean
            t_full = float(full["seconds"])  # type: ignore[arg-type]
            up_full = int(full["uplink_bytes"])  # type: ignore[arg-type]
            print(
                f"\n1. full backup through the whole path: {t_full:.1f} s ({disk / MIB / t_full:.0f} MiB/s), "
                f"{up_full / MIB:.0f} MiB on the uplink; ratio to plain restic {plain_backup / t_full:.2f} "
                "(target >= 0.7)"
            )
            print(
                "   CPU seconds during it: "
                + ", ".join(f"{k} {own:.1f} + children {kids:.1f}" for k, (own, kids) in cpu.items())
            )

            inc: dict[str, object] = {}
            sc: dict[str, object] = {}
            cfull: dict[str, object] = {}
            cinc: dict[str, object] = {}
            if not args.full_and_restore:
                _regions(lab, "bench-vm", disk, 16, disk // 100, 1)
                inc = _vm(lab.run("bench", timeout=7200, poll=POLL), "bench-vm")
                t_inc = float(inc["seconds"])  # type: ignore[arg-type]
                up_inc = int(inc["uplink_bytes"])  # type: ignore[arg-type]
                print(
                    f"2. 1 % changed in 16 regions: {up_inc / MIB:.1f} MiB on the uplink = {100 * up_inc / disk:.2f} % "
                    f"of the disk (target <= 3 %); {t_inc:.1f} s = {t_inc / t_full:.2f}x the full (target <= 0.5x); "
                    f"{inc['segments_changed']} of {inc['segments_total']} segments read back by restic"
                )

                t = time.monotonic()
                writes = _scattered(lab, "bench-vm", disk, disk // 100, 2)
                print(f"   ({writes} scattered 4 KiB guest writes issued in {time.monotonic() - t:.0f} s)")
                sc = _vm(lab.run("bench", timeout=7200, poll=POLL), "bench-vm")
                up_sc = int(sc["uplink_bytes"])  # type: ignore[arg-type]
                print(
                    f"3. 1 % changed as scattered 4 KiB writes: {up_sc / MIB:.0f} MiB on the uplink = "
                    f"{100 * up_sc / disk:.1f} % of the disk; {float(sc['seconds']):.1f} s; "  # type: ignore[arg-type]
                    f"{sc['segments_changed']} of {sc['segments_total']} segments changed"
                )

                lab.job("cbt", ["bench-cbt"], changed_blocks=True)
                cfull = _vm(lab.run("cbt", timeout=7200, poll=POLL), "bench-cbt")
                _regions(lab, "bench-cbt", disk, 16, disk // 100, 3)
                cinc = _vm(lab.run("cbt", timeout=7200, poll=POLL), "bench-cbt")
                t_cfull, t_cinc = float(cfull["seconds"]), float(cinc["seconds"])  # type: ignore[arg-type]
                print(
                    f"4. changed-block tracking: full {t_cfull:.1f} s; 1 % in 16 regions {t_cinc:.1f} s = "
                    f"{t_cinc / t_cfull:.2f}x the full (target <= 0.2x); read {int(cinc['bytes_read']) / MIB:.0f} MiB "  # type: ignore[call-overload]
                    f"from the datastore, {int(cinc['uplink_bytes']) / MIB:.1f} MiB on the uplink"
                )  # type: ignore[call-overload]

            _settle()
            before = {k: _cpu(v) for k, v in pids.items()}
            print(f"load before the restore: {_uptime()}")
            with _profiled(args.profile, "restore", pids):
                done = lab.restore(vm="bench-vm", name="bench-vm-restored", timeout=7200, poll=POLL)
            cpu = {k: (_cpu(v)[0] - before[k][0], _cpu(v)[1] - before[k][1]) for k, v in pids.items()}
            if done["state"] != "succeeded":
                raise SystemExit(f"restore failed: {done['message']}")
            t_restore = float(done["detail"]["seconds"])
            again_restore, _c = _plain_restore(work)
            mean_restore = (plain_restore + again_restore) / 2
            print(
                f"plain restic restore: {plain_restore:.1f} s before, {again_restore:.1f} s right after the "
                f"restore through the whole path; baseline = the mean, {mean_restore:.1f} s"
            )
            plain_restore = mean_restore
            print(
                f"5. restore to the site: {t_restore:.1f} s ({disk / MIB / t_restore:.0f} MiB/s) vs plain restic "
                f"restore from a local repository {plain_restore:.1f} s: ratio {plain_restore / t_restore:.2f} "
                "(target >= 0.7)"
            )
            print(
                "   CPU seconds during it: "
                + ", ".join(f"{k} {own:.1f} + children {kids:.1f}" for k, (own, kids) in cpu.items())
            )
            print(f"\nload after: {_uptime()}")
            print(
                json.dumps(
                    {
                        "full": full,
                        "incremental": inc,
                        "scattered": sc,
                        "cbt_full": cfull,
                        "cbt": cinc,
                        "restore": done["detail"],
                    },
                    default=str,
                )[:4000]
            )
        finally:
            lab.transporter.stop()
            lab.director.stop()
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
