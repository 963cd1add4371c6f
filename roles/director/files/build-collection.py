# Runs on the controller (never on a managed host): build this collection's tarball into OUT_DIR only
# when its content changed, so that an unchanged collection is not copied and installed again
# (ansible-galaxy writes new timestamps into every build).
#   python build-collection.py ANSIBLE_GALAXY COLLECTION_ROOT OUT_DIR
# Prints "built <tarball>" or "unchanged <tarball>".
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

galaxy, root, out = sys.argv[1:4]


def fingerprint(path):
    digest = hashlib.sha256()
    with tarfile.open(path) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            digest.update(member.name.encode() + b"\0")
            if member.isfile():
                digest.update(hashlib.sha256(tar.extractfile(member).read()).digest())
    return digest.hexdigest()


if not os.path.isdir(out):
    os.makedirs(out)
work = tempfile.mkdtemp(dir=out, prefix=".collection.")
try:
    subprocess.run([galaxy, "collection", "build", "--output-path", work, root], check=True, stdout=subprocess.DEVNULL)
    (name,) = [n for n in os.listdir(work) if n.endswith(".tar.gz")]
    built = os.path.join(work, name)
    stamp = os.path.join(out, name + ".fingerprint")
    new = fingerprint(built)
    old = ""
    if os.path.exists(stamp) and os.path.exists(os.path.join(out, name)):
        with open(stamp) as handle:
            old = handle.read().strip()
    if new == old:
        print("unchanged " + os.path.join(out, name))
    else:
        shutil.move(built, os.path.join(out, name))
        with open(stamp, "w") as handle:
            handle.write(new + "\n")
        print("built " + os.path.join(out, name))
finally:
    shutil.rmtree(work, ignore_errors=True)
