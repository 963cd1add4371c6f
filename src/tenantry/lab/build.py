"""Find the repository and build the Go simulator binary (``.lab/bin/tenantry-vcsim``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tenantry.lab.errors import LabError

#: Where Debian's golang-github-vmware-govmomi-dev puts the govmomi source.
DEFAULT_GOPATH = Path("/usr/share/gocode")
_GOVMOMI_SIMULATOR = Path("src/github.com/vmware/govmomi/simulator")
_BINARY_NAME = "tenantry-vcsim"


def repo_root() -> Path:
    """The repository root: ``$TENANTRY_REPO``, else found from this package (editable install)."""
    env = os.environ.get("TENANTRY_REPO")
    root = Path(env) if env else Path(__file__).resolve().parents[3]
    if not (root / "lab" / "vcsim").is_dir():
        hint = "" if env else " (set TENANTRY_REPO to the repository root, or use an editable install)"
        raise LabError(f"{root} is not the tenantry repository: lab/vcsim is missing{hint}")
    return root


def binary_path(repo: Path | None = None) -> Path:
    return (repo or repo_root()) / ".lab" / "bin" / _BINARY_NAME


def _sources(source_dir: Path) -> list[Path]:
    return sorted(p for p in source_dir.rglob("*") if p.is_file() and p.suffix == ".go")


def _up_to_date(binary: Path, sources: list[Path]) -> bool:
    if not binary.exists():
        return False
    built = binary.stat().st_mtime
    return all(src.stat().st_mtime <= built for src in sources)


def build(force: bool = False, *, repo: Path | None = None) -> Path:
    """Build the simulator unless the binary is newer than every ``lab/vcsim`` source; return its path.

    Builds offline against Debian's govmomi source (``GOPATH=/usr/share/gocode
    GO111MODULE=off``); ``$TENANTRY_GOPATH`` overrides the GOPATH.
    """
    root = repo or repo_root()
    source_dir = root / "lab" / "vcsim"
    binary = binary_path(root)
    sources = _sources(source_dir)
    if not sources:
        raise LabError(f"no Go sources in {source_dir}")
    if not force and _up_to_date(binary, sources):
        return binary

    go = shutil.which("go")
    if go is None:
        raise LabError("the Go compiler is missing: install it with 'apt-get install golang-go'")
    gopath = Path(os.environ.get("TENANTRY_GOPATH", str(DEFAULT_GOPATH)))
    if not (gopath / _GOVMOMI_SIMULATOR).is_dir():
        raise LabError(
            f"the govmomi source is missing under {gopath}: install it with "
            "'apt-get install golang-github-vmware-govmomi-dev' (or set TENANTRY_GOPATH)"
        )

    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(f".{binary.name}.{os.getpid()}.tmp")
    env = {**os.environ, "GOPATH": str(gopath), "GO111MODULE": "off", "GOFLAGS": ""}
    result = subprocess.run(
        [go, "build", "-o", str(partial), "."],
        cwd=source_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise LabError(f"go build in {source_dir} failed:\n{result.stderr.strip()}")
    os.replace(partial, binary)  # atomic: concurrent builders never run a half-written binary
    return binary
