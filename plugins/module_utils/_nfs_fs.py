# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""The per-tenant NFS filesystems of module nfs_export_fs (sparse ext4 images, loop-mounted, in an fstab
file): a module calls ensure(module)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from typing import Any

GIB = 1024**3
MARKER = "x-tenantry-nfs"
# nofail: a broken image does not stop the boot (the export's mp option keeps an unmounted path unexported).
FSTAB_OPTIONS = f"loop,nofail,x-systemd.before=nfs-server.service,{MARKER}"
MKFS = ["mkfs.ext4", "-q", "-F", "-m", "0", "-T", "largefile", "-E", "lazy_itable_init=1,lazy_journal_init=1"]


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _escape(field: str) -> str:
    return field.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011")


def mounts() -> dict[str, tuple[str, str]]:
    """Mount point -> (source, fstype), the last mount on a point winning."""
    found: dict[str, tuple[str, str]] = {}
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            left, right = line.split(" - ", 1)
            fields, rest = left.split(), right.split()
            found[_unescape(fields[4])] = (_unescape(rest[1]), rest[0])
    return found


def backing_file(device: str) -> str | None:
    name = os.path.basename(device)
    try:
        with open(f"/sys/block/{name}/loop/backing_file", encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return None


def loops_of(image: str) -> list[str]:
    """The loop devices backed by image."""
    target = os.path.realpath(image)
    found = []
    for name in sorted(os.listdir("/sys/block")):
        if name.startswith("loop") and backing_file(f"/dev/{name}") == target:
            found.append(f"/dev/{name}")
    return found


def fs_bytes(image: str) -> int | None:
    """Size of the ext4 filesystem in the image (its superblock), None when there is none."""
    proc = subprocess.run(["dumpe2fs", "-h", image], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return None
    values = dict(re.findall(r"^(Block count|Block size):\s+(\d+)$", proc.stdout, re.M))
    if "Block count" not in values or "Block size" not in values:
        return None
    return int(values["Block count"]) * int(values["Block size"])


def usage(path: str, image_bytes: int, unit: int) -> dict[str, Any]:
    st = os.statvfs(path)
    total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
    used = total - st.f_bfree * st.f_frsize
    return {
        "path": path,
        "size_gb": image_bytes // unit if image_bytes % unit == 0 else round(image_bytes / unit, 2),
        "size_bytes": total,
        "used_bytes": used,
        "free_bytes": free,
        "used_percent": round(100.0 * used / (used + free), 1) if used + free else 0.0,
    }


class Filesystems:
    def __init__(self, module: Any) -> None:
        self.module = module
        self.params = module.params
        self.unit = GIB
        self.mounts = mounts()
        self.actions: list[str] = []
        self.fstab_diff: dict[str, str] = {}

    def run(self, args: list[str]) -> None:
        rc, out, err = self.module.run_command(args)
        if rc != 0:
            self.module.fail_json(msg=f"{' '.join(args)} failed ({rc}): {(err or out).strip()}", actions=self.actions)

    def image(self, tenant: str) -> str:
        return os.path.join(self.params["image_dir"], f"{tenant}.img")

    def ours(self, path: str, image: str) -> str | None:
        """The loop device when path is mounted from image, else None."""
        source = self.mounts.get(path, ("", ""))[0]
        if source.startswith("/dev/loop") and backing_file(source) == os.path.realpath(image):
            return source
        return None

    def describe(self, entry: dict[str, Any]) -> str:
        image = self.image(entry["tenant"])
        if not os.path.exists(image):
            return f"{entry['tenant']}: no filesystem"
        mounted = "mounted" if self.ours(entry["path"], image) else "not mounted"
        return f"{entry['tenant']}: {os.path.getsize(image) / self.unit:g} GB at {entry['path']} ({mounted})"

    # -- present ------------------------------------------------------------------------------------
    def plan(self, entry: dict[str, Any]) -> list[str]:
        """What to do for one tenant, or fail naming the tenant and field when it must not be done."""
        tenant, path = entry["tenant"], entry["path"]
        want = int(entry["size_gb"]) * self.unit
        image = self.image(tenant)
        where = f"nfs_export_list ({tenant})"
        device = self.ours(path, image) if os.path.exists(image) else None
        steps: list[str] = []
        if os.path.exists(image):
            have = os.path.getsize(image)
            if want < have:
                self.module.fail_json(
                    msg=f"{where}: size_gb {entry['size_gb']} is smaller than the tenant's filesystem "
                    f"({have / self.unit:g} GB, {image}); shrinking is not supported; nothing was changed"
                )
            fs_size = fs_bytes(image)
            if fs_size is None:
                self.module.fail_json(
                    msg=f"{where}: {image} holds no ext4 filesystem; move it away to create a new one; "
                    "nothing was changed"
                )
            if want > have:
                steps.append(f"grow {tenant} from {have / self.unit:g} to {entry['size_gb']} GB")
            elif (fs_size or 0) < have:
                steps.append(f"grow {tenant}'s filesystem to its image ({have / self.unit:g} GB)")
        else:
            steps.append(f"create a {entry['size_gb']} GB filesystem for {tenant} ({image})")
        if device is None:
            if path in self.mounts:
                self.module.fail_json(
                    msg=f"{where}: {path} is already a mount point ({self.mounts[path][0]}), not the tenant's "
                    f"filesystem {image}; unmount it or keep plain directories with nfs_export_quota: none; "
                    "nothing was changed"
                )
            if os.path.isdir(path) and os.listdir(path):
                self.module.fail_json(
                    msg=f"{where}: {path} already holds data but not on the tenant's own filesystem; mounting "
                    "it would hide the data: move the data away (and back onto the mounted filesystem "
                    "afterwards) or keep plain directories with nfs_export_quota: none; nothing was changed"
                )
            if os.path.exists(path) and not os.path.isdir(path):
                self.module.fail_json(msg=f"{where}: {path} exists and is not a directory; nothing was changed")
            steps.append(f"mount {tenant}'s filesystem at {path}")
        return steps

    def apply(self, entry: dict[str, Any]) -> None:
        tenant, path = entry["tenant"], entry["path"]
        want = int(entry["size_gb"]) * self.unit
        image = self.image(tenant)
        if not os.path.exists(image):
            os.makedirs(self.params["image_dir"], mode=0o700, exist_ok=True)
            fresh = image + ".new"
            with open(fresh, "wb") as handle:
                handle.truncate(want)
            self.run([*MKFS, "-L", f"nfs-{tenant}"[:16], fresh])
            os.rename(fresh, image)
        device = self.ours(path, image)
        if os.path.getsize(image) < want:
            os.truncate(image, want)
            if device:
                self.run(["losetup", "-c", device])
        if (fs_bytes(image) or 0) < os.path.getsize(image):
            if device:
                rc, out, err = self.module.run_command(["resize2fs", device])
                if rc != 0 and "Permission denied" in err + out:
                    # No CAP_SYS_RESOURCE (a container): ext4 cannot grow mounted; grow it a moment unmounted.
                    self.actions.append(f"{tenant}: no online resize here (no CAP_SYS_RESOURCE): grown unmounted")
                    rc, out, err = self.module.run_command(["umount", path])
                    if rc != 0:
                        self.module.fail_json(
                            msg=f"nfs_export_list ({tenant}): {path} cannot grow online here (resize2fs needs "
                            f"CAP_SYS_RESOURCE) nor be unmounted to grow: {(err or out).strip()}; its image is "
                            "already larger, the next run finishes the growth once it can",
                            actions=self.actions,
                        )
                    device = None
                    self.released(tenant, path, image)
                elif rc != 0:
                    self.module.fail_json(msg=f"resize2fs {device} failed ({rc}): {(err or out).strip()}")
            if not device:
                self.released(tenant, path, image)
                rc, out, err = self.module.run_command(["e2fsck", "-f", "-p", image])
                if rc > 1:
                    self.module.fail_json(msg=f"e2fsck -f -p {image} failed ({rc}): {(err or out).strip()}")
                self.run(["resize2fs", image])
        if not device:
            os.makedirs(path, exist_ok=True)
            self.run(["mount", "-t", "ext4", "-o", "loop", image, path])

    def released(self, tenant: str, path: str, image: str) -> None:
        """Before an offline check and resize: no loop device may still hold the image. One does when the
        filesystem is still mounted in another mount namespace (a process started while it was mounted, e.g.
        by ip netns exec, on a host whose / is not a shared mount); then nothing is touched, it is mounted back."""
        deadline = time.monotonic() + 5  # the loop device is freed (autoclear) just after the unmount
        while time.monotonic() < deadline:
            if not loops_of(image):
                return
            time.sleep(0.1)
        if not os.path.ismount(path):
            self.run(["mount", "-t", "ext4", "-o", "loop", image, path])
        self.module.fail_json(
            msg=f"nfs_export_list ({tenant}): its filesystem cannot grow online here (resize2fs needs "
            f"CAP_SYS_RESOURCE) and is still in use by {', '.join(loops_of(image))} (mounted in another mount "
            f"namespace) so it cannot grow unmounted either; it stays mounted at {path} at its old size, its image "
            "is already larger: a later run finishes the growth once the other namespace has let it go",
            actions=self.actions,
        )

    # -- fstab --------------------------------------------------------------------------------------
    def fstab(self, present: dict[str, str], absent: set[str]) -> bool:
        """Keep one line per present mount point (image -> path), drop the lines of the absent ones."""
        name = self.params["fstab"]
        try:
            with open(name, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except FileNotFoundError:
            lines = []
        wanted = {path: f"{_escape(image)} {_escape(path)} ext4 {FSTAB_OPTIONS} 0 0" for path, image in present.items()}
        kept: list[str] = []
        for line in lines:
            fields = line.split()
            target = _unescape(fields[1]) if len(fields) > 1 and not line.lstrip().startswith("#") else None
            if target in absent and MARKER in line:
                continue
            if target in wanted:
                kept.append(wanted.pop(target))
                continue
            kept.append(line)
        kept.extend(wanted[path] for path in sorted(wanted))
        if kept == lines:
            return False
        self.fstab_diff = {"before": "".join(f"{ln}\n" for ln in lines), "after": "".join(f"{ln}\n" for ln in kept)}
        if not self.module.check_mode:
            os.makedirs(os.path.dirname(name) or ".", exist_ok=True)
            temp = f"{name}.tenantry-new"
            with open(temp, "w", encoding="utf-8") as handle:
                handle.write("\n".join(kept) + "\n")
            if os.path.exists(name):
                st = os.stat(name)
                os.chmod(temp, st.st_mode & 0o7777)
            else:
                os.chmod(temp, 0o644)
            self.module.atomic_move(temp, name)
        return True

    # -- absent -------------------------------------------------------------------------------------
    def remove(self, entry: dict[str, Any]) -> list[str]:
        tenant, path = entry["tenant"], entry["path"]
        image = self.image(tenant)
        steps: list[str] = []
        device = self.ours(path, image) if os.path.exists(image) else None
        if device:
            steps.append(f"unmount {tenant}'s filesystem from {path}")
        purge = self.params["image"] == "remove" and os.path.exists(image)
        if purge:
            steps.append(f"remove {tenant}'s image {image} and its data")
        if device or (os.path.isdir(path) and not os.path.ismount(path) and not os.listdir(path)):
            steps.append(f"remove the mount point {path} once empty")
        if self.module.check_mode:
            return steps
        if device:
            self.run(["umount", path])
        if purge:
            os.remove(image)
        if os.path.isdir(path) and not os.path.ismount(path) and not os.listdir(path):
            os.rmdir(path)
        return steps


def ensure(module: Any) -> None:
    """Check every entry, then bring the filesystems to module.params["state"]; exits the module."""
    fs = Filesystems(module)
    exports: list[dict[str, Any]] = module.params["exports"]
    if module.params["state"] == "present":
        for entry in exports:
            if entry["size_gb"] is None or entry["size_gb"] < 1:
                module.fail_json(
                    msg=f"nfs_export_list ({entry['tenant']}): size_gb must be a whole number of GB, at least 1, "
                    f"got {entry['size_gb']!r}; nothing was changed"
                )
    names = [e["tenant"] for e in exports]
    for entry in exports:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", entry["tenant"]):
            module.fail_json(
                msg=f"nfs_export_list ({entry['tenant']}): tenant must be letters, digits, '.', '_' or '-' (it names "
                "the image file); nothing was changed"
            )
        if names.count(entry["tenant"]) > 1:
            module.fail_json(
                msg=f"nfs_export_list ({entry['tenant']}): the tenant is listed twice; nothing was changed"
            )
    before = "".join(fs.describe(e) + "\n" for e in exports)
    if module.params["state"] == "present":
        plans = {e["tenant"]: fs.plan(e) for e in exports}  # every entry checked before anything changes
        for entry in exports:
            fs.actions.extend(plans[entry["tenant"]])
            if plans[entry["tenant"]] and not module.check_mode:
                fs.apply(entry)
        fs.mounts = mounts()
        fstab_changed = fs.fstab({e["path"]: fs.image(e["tenant"]) for e in exports}, set())
        result_usage = {}
        for entry in exports:
            image = fs.image(entry["tenant"])
            if os.path.exists(image) and fs.ours(entry["path"], image):
                result_usage[entry["tenant"]] = usage(entry["path"], os.path.getsize(image), fs.unit)
        after = "".join(f"{e['tenant']}: {e['size_gb']} GB at {e['path']} (mounted)\n" for e in exports)
    else:
        for entry in exports:
            fs.actions.extend(fs.remove(entry))
        fs.mounts = mounts()
        fstab_changed = fs.fstab({}, {e["path"] for e in exports})
        result_usage = {}
        after = "".join(
            f"{e['tenant']}: no filesystem\n"
            if module.params["image"] == "remove" or not os.path.exists(fs.image(e["tenant"]))
            else f"{e['tenant']}: image {fs.image(e['tenant'])} kept, not mounted\n"
            for e in exports
        )
    if fstab_changed:
        fs.actions.append(f"update {module.params['fstab']}")
    diff = [{"before_header": "filesystems", "after_header": "filesystems", "before": before, "after": after}]
    if fstab_changed:
        diff.append({"before_header": module.params["fstab"], "after_header": module.params["fstab"], **fs.fstab_diff})
    module.exit_json(changed=bool(fs.actions), actions=fs.actions, usage=result_usage, diff=diff)
