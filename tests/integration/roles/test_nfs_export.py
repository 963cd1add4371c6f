"""The nfs_export role for real on this machine, into a scratch root (no NFS server runs here: the
install and re-export steps are switched off by their public variables, and the test says so).

With nfs_export_quota filesystem (the default) each tenant's path becomes a real ext4 filesystem on a sparse
loop-mounted image of size_gb: the tests mount them (root, /dev/loop-control) each in a mount namespace of its
own (processes other suites start meanwhile must not hold copies of its mounts), and unmount them and detach
their loop devices whatever the outcome."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import in_own_mount_namespace, run_playbook, unmount_under

GIB = 1024**3
CAP_SYS_RESOURCE = 24
_CAPS = next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("CapEff:"))
ONLINE_RESIZE = bool(int(_CAPS.split()[1], 16) & (1 << CAP_SYS_RESOURCE))


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    try:
        yield tmp_path
    finally:
        unmount_under(tmp_path)


def play(tmp_path: Path, exports: list[dict[str, Any]], **extra: Any) -> Path:
    path = tmp_path / "nfs.yml"
    role_vars = {
        "nfs_export_list": exports,
        "nfs_export_root": str(tmp_path / "srv"),
        "nfs_export_file": str(tmp_path / "exports.d" / "tenantry.exports"),
        "nfs_export_image_dir": str(tmp_path / "images"),
        "nfs_export_fstab": str(tmp_path / "fstab"),
        "nfs_export_install": False,
        "nfs_export_reload": False,
        **extra,
    }
    path.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False,
                                 "roles": [{"role": "tenantry.msp.nfs_export", "vars": role_vars}]}]))  # fmt: skip
    return path


def run(tmp_path: Path, exports: list[dict[str, Any]], *flags: str, **extra: Any) -> Any:
    return run_playbook(play(tmp_path, exports, **extra), "-i", "localhost,", "-c", "local", *flags)


def changed(run: Any) -> bool:
    return any(r.get("changed") for r in run.results)


def usage(run: Any) -> dict[str, Any]:
    facts = [r.get("ansible_facts", {}) for r in run.results]
    found = [f["nfs_export_usage"] for f in facts if "nfs_export_usage" in f]
    return found[-1] if found else {}


def mount_of(path: Path) -> tuple[str, str] | None:
    """(source, fstype) of the mount at path, or None."""
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        found = None
        for line in handle:
            left, _, right = line.partition(" - ")
            if left.split()[4] == str(path):
                found = (right.split()[1], right.split()[0])
    return found


def snapshot(tmp_path: Path) -> list[tuple[str, int]]:
    """Every file under the scratch root but the playbook, with its size: what a run may not change."""
    return sorted((str(p.relative_to(tmp_path)), p.stat().st_size) for p in tmp_path.rglob("*") if p.name != "nfs.yml")


EXPORTS = [
    {"tenant": "acme", "path": "/exports/tenants/acme", "clients": ["10.0.16.0/20"], "size_gb": 1},
    {
        "tenant": "globex",
        "path": "/exports/tenants/globex",
        "clients": ["10.0.16.0/20", "10.0.32.5"],
        "options": "rw,sync",
        "size_gb": 2,
    },
]


def test_idempotent_plain_directories(tmp_path: Path) -> None:
    """nfs_export_quota none: plain directories as before, size_gb not enforced, nothing mounted."""
    path = play(tmp_path, EXPORTS, nfs_export_quota="none")
    args = ["-i", "localhost,", "-c", "local"]
    runs = [run_playbook(path, *args, *(["--check"] if check else [])) for check in (True, False, True, False)]
    assert [r.rc for r in runs] == [0, 0, 0, 0], runs[1].stdout[-2000:]
    assert [changed(r) for r in runs] == [True, True, False, False]
    assert (tmp_path / "srv" / "exports" / "tenants" / "acme").is_dir()
    assert mount_of(tmp_path / "srv" / "exports" / "tenants" / "acme") is None
    assert not (tmp_path / "images").exists() and not (tmp_path / "fstab").exists()
    assert usage(runs[-1]) == {}
    lines = [
        ln for ln in (tmp_path / "exports.d" / "tenantry.exports").read_text().splitlines() if not ln.startswith("#")
    ]
    assert f"{tmp_path}/srv/exports/tenants/acme 10.0.16.0/20(rw,sync,no_subtree_check,no_root_squash)" in lines
    assert f"{tmp_path}/srv/exports/tenants/globex 10.0.16.0/20(rw,sync) 10.0.32.5(rw,sync)" in lines


@in_own_mount_namespace
def test_each_tenant_gets_its_own_filesystem_of_size_gb(scratch: Path) -> None:
    tmp_path = scratch
    acme, globex = (tmp_path / "srv" / "exports" / "tenants" / t for t in ("acme", "globex"))

    checked = run(tmp_path, EXPORTS, "--check", "--diff")
    assert checked.rc == 0 and changed(checked), checked.stdout[-3000:]
    assert snapshot(tmp_path) == [] and mount_of(acme) is None  # check mode: nothing at all
    planned = next(r for r in checked.results if "actions" in r)["actions"]
    assert f"create a 1 GB filesystem for acme ({tmp_path}/images/acme.img)" in planned, planned

    runs = [run(tmp_path, EXPORTS, *flags) for flags in ((), ("--check",), ())]
    assert [r.rc for r in runs] == [0, 0, 0], runs[0].stdout[-3000:]
    assert [changed(r) for r in runs] == [True, False, False]

    for path, tenant, size in ((acme, "acme", 1), (globex, "globex", 2)):
        source, fstype = mount_of(path) or ("", "")
        assert fstype == "ext4" and source.startswith("/dev/loop"), (source, fstype)
        backing = Path(f"/sys/block/{Path(source).name}/loop/backing_file").read_text().strip()
        assert backing == f"{tmp_path}/images/{tenant}.img"
        image = tmp_path / "images" / f"{tenant}.img"
        assert image.stat().st_size == size * GIB and image.stat().st_blocks * 512 < 64 * 1024**2  # sparse
        options = "loop,nofail,x-systemd.before=nfs-server.service,x-tenantry-nfs"
        assert f"{image} {path} ext4 {options} 0 0" in (tmp_path / "fstab").read_text()
        assert oct(path.stat().st_mode & 0o777) == "0o770"

    exported = (tmp_path / "exports.d" / "tenantry.exports").read_text().splitlines()
    assert f"{acme} 10.0.16.0/20(rw,sync,no_subtree_check,no_root_squash,mp)" in exported, exported  # only mounted
    assert f"{globex} 10.0.16.0/20(rw,sync,mp) 10.0.32.5(rw,sync,mp)" in exported, exported

    report = usage(runs[-1])
    assert sorted(report) == ["acme", "globex"] and report["acme"]["size_gb"] == 1, report
    assert 0.9 * GIB < report["acme"]["size_bytes"] <= GIB and report["acme"]["used_percent"] < 5, report
    assert 1.9 * GIB < report["globex"]["size_bytes"] <= 2 * GIB, report
    printed = [r for r in runs[-1].results if isinstance(r.get("msg"), list)]
    assert any(line.startswith("acme: 1 GB at ") for r in printed for line in r["msg"]), printed

    # The size is enforced: fill acme, then a few MB more fail with ENOSPC; globex is unaffected.
    too_big = subprocess.run(["fallocate", "-l", str(GIB), str(acme / "too-big")], capture_output=True, text=True)
    assert too_big.returncode != 0 and "No space left" in too_big.stderr, too_big
    (acme / "too-big").unlink(missing_ok=True)
    free = os.statvfs(acme).f_bavail * os.statvfs(acme).f_frsize
    subprocess.run(["fallocate", "-l", str(free - 4 * 1024**2), str(acme / "fill")], check=True)
    with pytest.raises(OSError) as full, open(acme / "more", "wb") as handle:
        for _ in range(8):
            handle.write(os.urandom(1024**2))
            handle.flush()
            os.fsync(handle.fileno())
    assert full.value.errno == errno.ENOSPC
    (globex / "vm.vmdk").write_bytes(os.urandom(4 * 1024**2))
    full_report = usage(run(tmp_path, EXPORTS, "--check"))
    assert full_report["acme"]["used_percent"] > 99 and full_report["globex"]["used_percent"] < 5, full_report


@in_own_mount_namespace
def test_growth_is_online_and_shrinking_refused(scratch: Path) -> None:
    tmp_path = scratch
    acme = tmp_path / "srv" / "exports" / "tenants" / "acme"
    first = run(tmp_path, EXPORTS[:1])
    assert first.rc == 0, first.stdout[-3000:]
    device = (mount_of(acme) or ("", ""))[0]
    (acme / "vm.vmdk").write_bytes(b"replica")
    bigger = [{**EXPORTS[0], "size_gb": 3}]
    planned = run(tmp_path, bigger, "--check")
    assert planned.rc == 0 and changed(planned) and (tmp_path / "images" / "acme.img").stat().st_size == GIB
    grown = run(tmp_path, bigger, "--diff")
    assert grown.rc == 0 and changed(grown), grown.stdout[-3000:]
    actions = next(r for r in grown.results if "actions" in r)["actions"]
    assert {"grow acme from 1 to 3 GB", "grow acme's filesystem to its image (3 GB)"} & set(actions), actions
    if ONLINE_RESIZE:  # ext4 grows mounted only with CAP_SYS_RESOURCE (this machine's sandbox may lack it)
        assert (mount_of(acme) or ("", ""))[0] == device and not any("grown unmounted" in a for a in actions)
    else:
        assert "acme: no online resize here (no CAP_SYS_RESOURCE): grown unmounted" in actions, actions
    assert 2.9 * GIB < os.statvfs(acme).f_blocks * os.statvfs(acme).f_frsize <= 3 * GIB
    assert usage(grown)["acme"]["size_gb"] == 3
    assert not changed(run(tmp_path, bigger))
    assert (acme / "vm.vmdk").read_bytes() == b"replica"

    if not ONLINE_RESIZE:
        # Grown unmounted only when nothing else holds it: a process in another mount namespace (here one made
        # by unshare, as ip netns exec does) keeps its own copy of the mount; the run refuses, puts it back.
        holder = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sleep", "300"])
        try:
            held = run(tmp_path, [{**EXPORTS[0], "size_gb": 4}])
            assert held.rc != 0
            message = json.dumps(held.results)
            assert "nfs_export_list (acme): its filesystem cannot grow online here" in message, message
            assert "mounted in another mount namespace" in message and mount_of(acme) is not None
            assert (acme / "vm.vmdk").read_bytes() == b"replica"
            assert os.statvfs(acme).f_blocks * os.statvfs(acme).f_frsize <= 3 * GIB
        finally:
            holder.kill()
            holder.wait()
        finished = run(tmp_path, [{**EXPORTS[0], "size_gb": 4}])
        assert finished.rc == 0, finished.stdout[-3000:]
        assert 3.9 * GIB < os.statvfs(acme).f_blocks * os.statvfs(acme).f_frsize <= 4 * GIB
        assert (acme / "vm.vmdk").read_bytes() == b"replica"

    size = 4 if not ONLINE_RESIZE else 3
    before = snapshot(tmp_path)
    fstab = (tmp_path / "fstab").read_text()
    shrunk = run(tmp_path, [{**EXPORTS[0], "size_gb": 2}])
    assert shrunk.rc != 0
    message = json.dumps(shrunk.results)
    assert f"nfs_export_list (acme): size_gb 2 is smaller than the tenant's filesystem ({size} GB" in message, message
    assert "nothing was changed" in message
    assert snapshot(tmp_path) == before and (tmp_path / "fstab").read_text() == fstab


@in_own_mount_namespace
def test_a_path_holding_data_is_refused_not_hidden(scratch: Path) -> None:
    tmp_path = scratch
    acme = tmp_path / "srv" / "exports" / "tenants" / "acme"
    acme.mkdir(parents=True)
    (acme / "old-replica.vmdk").write_bytes(b"data")
    refused = run(tmp_path, EXPORTS)
    assert refused.rc != 0
    message = json.dumps(refused.results)
    assert f"nfs_export_list (acme): {acme} already holds data but not on the tenant's own filesystem" in message
    assert "nfs_export_quota: none" in message
    assert mount_of(acme) is None and not (tmp_path / "images").exists() and not (tmp_path / "fstab").exists()
    assert not (tmp_path / "srv" / "exports" / "tenants" / "globex").exists()  # every entry checked first
    assert (acme / "old-replica.vmdk").read_bytes() == b"data"


@in_own_mount_namespace
def test_state_absent_unmounts_and_keeps_or_removes_the_image(scratch: Path) -> None:
    tmp_path = scratch
    acme = tmp_path / "srv" / "exports" / "tenants" / "acme"
    image = tmp_path / "images" / "acme.img"
    assert run(tmp_path, EXPORTS).rc == 0
    (acme / "vm.vmdk").write_bytes(b"replica")
    gone = [{**EXPORTS[0], "state": "absent"}, EXPORTS[1]]

    before = snapshot(tmp_path)
    checked = run(tmp_path, gone, "--check", "--diff")
    assert checked.rc == 0 and changed(checked) and snapshot(tmp_path) == before and mount_of(acme) is not None

    # By default the image stays (unmounted, unexported, out of fstab) for the MSP to decide.
    removed = run(tmp_path, gone)
    assert removed.rc == 0 and changed(removed), removed.stdout[-3000:]
    assert mount_of(acme) is None and not acme.exists() and image.exists()
    fstab = (tmp_path / "fstab").read_text()
    assert "acme" not in fstab and "globex.img" in fstab
    assert "acme" not in (tmp_path / "exports.d" / "tenantry.exports").read_text()
    assert sorted(usage(removed)) == ["globex"]
    assert not changed(run(tmp_path, gone))

    # The same tenant onboarded again gets its filesystem and data back.
    again = run(tmp_path, EXPORTS)
    assert again.rc == 0 and mount_of(acme) is not None and (acme / "vm.vmdk").read_bytes() == b"replica"

    # nfs_export_absent_image remove: nothing of the tenant is left.
    purged = run(tmp_path, gone, nfs_export_absent_image="remove")
    assert purged.rc == 0 and changed(purged), purged.stdout[-3000:]
    assert mount_of(acme) is None and not acme.exists() and not image.exists()
    assert (tmp_path / "images" / "globex.img").exists() and mount_of(tmp_path / "srv/exports/tenants/globex")
    assert not changed(run(tmp_path, gone, nfs_export_absent_image="remove"))


def test_bad_entries_fail_before_any_change(tmp_path: Path) -> None:
    for bad, expected in (
        ([{"tenant": "acme", "path": "exports/acme", "clients": ["10.0.16.0/20"]}], "nfs_export_list[0] (acme)"),
        ([{"tenant": "acme", "path": "/x", "clients": []}], "at least one client"),
        ([EXPORTS[0], {**EXPORTS[0], "tenant": "acme2"}], "a path is exported twice"),
        ([EXPORTS[0], {**EXPORTS[1], "tenant": "acme"}], "a tenant is listed twice"),
        ([{**EXPORTS[0], "tenant": "../acme"}], "nfs_export_list[0] (../acme): needs tenant (letters"),
        ([{**EXPORTS[0], "path": "/exports/tenants/../../etc"}], "without '..'"),
        ([EXPORTS[1], {**EXPORTS[0], "size_gb": 0}], "nfs_export_list[1] (acme)"),
        ([{**EXPORTS[0], "size_gb": "lots"}], "size_gb a whole number of GB"),
        ([{**EXPORTS[0], "state": "gone"}], "state present or absent"),
    ):
        run_ = run(tmp_path, bad)
        assert run_.rc != 0 and expected in json.dumps(run_.results), (expected, run_.results[-1:])
        assert snapshot(tmp_path) == [], snapshot(tmp_path)
