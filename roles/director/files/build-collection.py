# Runs on the controller (never on a managed host): build this collection's tarball into OUT_DIR, and one
# tarball for each collection it depends on (galaxy.yml's dependencies and theirs), packed from the copy the
# controller runs, so that the jobs virtualenv holds what the playbooks need (cisco.ios, ansible.netcommon,
# ansible.utils for the switches) with no Galaxy. A tarball is replaced only when its content changed, so that
# an unchanged collection is not copied and installed again (ansible-galaxy writes new timestamps into every
# build).
#   python build-collection.py ANSIBLE_GALAXY COLLECTION_ROOT OUT_DIR [COLLECTIONS_PATH ...]
# COLLECTIONS_PATH: where the controller's collections are (as in collections_path: folders holding
# ansible_collections/); this Python's sys.path is searched after them, as Ansible does.
# Prints "built <tarball>" or "unchanged <tarball>", one line for each tarball, this collection's first.
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

import yaml

galaxy, root, out = sys.argv[1:4]
search = sys.argv[4:] + [p for p in sys.path if p]


def fingerprint(path):
    digest = hashlib.sha256()
    with tarfile.open(path) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            digest.update(member.name.encode() + b"\0")
            if member.isfile():
                digest.update(hashlib.sha256(tar.extractfile(member).read()).digest())
    return digest.hexdigest()


def keep(built, name):
    """Move the built tarball to OUT_DIR/name unless the one there has the same content."""
    target = os.path.join(out, name)
    stamp = target + ".fingerprint"
    new = fingerprint(built)
    old = ""
    if os.path.exists(stamp) and os.path.exists(target):
        with open(stamp) as handle:
            old = handle.read().strip()
    if new == old:
        print("unchanged " + target)
        return
    shutil.move(built, target)
    with open(stamp, "w") as handle:
        handle.write(new + "\n")
    print("built " + target)


def installed(fqcn):
    """The controller's copy of a collection: the first folder on the search path that holds it."""
    namespace, name = fqcn.split(".")
    for base in search:
        for top in (base, os.path.join(base, "ansible_collections")):
            path = os.path.join(top, namespace, name)
            if os.path.basename(top) == "ansible_collections" and os.path.isfile(os.path.join(path, "MANIFEST.json")):
                return path
    sys.exit(f"collection {fqcn} (a dependency of this collection) is not on the controller; searched {search}")


def add(tar, name, data=None, mode=0o644):
    """A member owned by root and dated 0: a folder, or a file with these bytes."""
    member = tarfile.TarInfo(name)
    member.uid = member.gid = 0
    member.uname = member.gname = "root"
    member.mtime = 0
    if data is None:
        member.type, member.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(member)
    else:
        member.size, member.mode = len(data), mode
        tar.addfile(member, io.BytesIO(data))


def pack(path, work):
    """A Galaxy artifact of an installed collection, as ansible-galaxy installs it: the files FILES.json lists
    that this copy holds (the ansible wheel leaves out some, such as .isort.cfg), FILES.json rewritten to them
    with their checksums, MANIFEST.json with the new FILES.json's checksum."""
    with open(os.path.join(path, "MANIFEST.json")) as handle:
        manifest = json.load(handle)
    with open(os.path.join(path, "FILES.json")) as handle:
        listing = json.load(handle)
    info = manifest["collection_info"]
    name = f"{info['namespace']}-{info['name']}-{info['version']}.tar.gz"
    built = os.path.join(work, name)
    kept = []
    with tarfile.open(built, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        for entry in listing["files"]:
            full = os.path.normpath(os.path.join(path, entry["name"]))
            if entry["ftype"] == "dir" and os.path.isdir(full):
                if entry["name"] != ".":
                    add(tar, entry["name"])
                kept.append(entry)
            elif entry["ftype"] == "file" and os.path.isfile(full):
                with open(full, "rb") as handle:
                    data = handle.read()
                add(tar, entry["name"], data, 0o755 if os.access(full, os.X_OK) else 0o644)
                kept.append(dict(entry, chksum_sha256=hashlib.sha256(data).hexdigest()))
        files = json.dumps(dict(listing, files=kept), indent=4).encode()
        manifest["file_manifest_file"]["chksum_sha256"] = hashlib.sha256(files).hexdigest()
        add(tar, "FILES.json", files)
        add(tar, "MANIFEST.json", json.dumps(manifest, indent=4).encode())
    return name, built, info.get("dependencies") or {}


os.makedirs(out, exist_ok=True)
work = tempfile.mkdtemp(dir=out, prefix=".collection.")
try:
    subprocess.run([galaxy, "collection", "build", "--output-path", work, root], check=True, stdout=subprocess.DEVNULL)
    (name,) = [n for n in os.listdir(work) if n.endswith(".tar.gz")]
    keep(os.path.join(work, name), name)
    with open(os.path.join(root, "galaxy.yml")) as handle:
        todo = list((yaml.safe_load(handle).get("dependencies") or {}).keys())
    done = set()
    while todo:
        fqcn = todo.pop(0)
        if fqcn in done:
            continue
        done.add(fqcn)
        name, built, needs = pack(installed(fqcn), work)
        keep(built, name)
        todo.extend(needs)
finally:
    shutil.rmtree(work, ignore_errors=True)
