"""The nfs_export role for real on this machine, into a scratch root (no NFS server runs here: the
install and re-export steps are switched off by their public variables, and the test says so)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support import run_playbook


def play(tmp_path: Path, exports: list[dict[str, Any]]) -> Path:
    path = tmp_path / "nfs.yml"
    role_vars = {
        "nfs_export_list": exports,
        "nfs_export_root": str(tmp_path / "srv"),
        "nfs_export_file": str(tmp_path / "exports.d" / "tenantry.exports"),
        "nfs_export_install": False,
        "nfs_export_reload": False,
    }
    path.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False,
                                 "roles": [{"role": "tenantry.msp.nfs_export", "vars": role_vars}]}]))  # fmt: skip
    return path


def changed(run: Any) -> bool:
    return any(r.get("changed") for r in run.results)


EXPORTS = [
    {"tenant": "acme", "path": "/exports/tenants/acme", "clients": ["10.0.16.0/20"]},
    {
        "tenant": "globex",
        "path": "/exports/tenants/globex",
        "clients": ["10.0.16.0/20", "10.0.32.5"],
        "options": "rw,sync",
    },
]


def test_idempotent_exports(tmp_path: Path) -> None:
    path = play(tmp_path, EXPORTS)
    args = ["-i", "localhost,", "-c", "local"]
    runs = [run_playbook(path, *args, *(["--check"] if check else [])) for check in (True, False, True, False)]
    assert [r.rc for r in runs] == [0, 0, 0, 0], runs[1].stdout[-2000:]
    assert [changed(r) for r in runs] == [True, True, False, False]
    assert (tmp_path / "srv" / "exports" / "tenants" / "acme").is_dir()
    lines = [
        ln for ln in (tmp_path / "exports.d" / "tenantry.exports").read_text().splitlines() if not ln.startswith("#")
    ]
    assert f"{tmp_path}/srv/exports/tenants/acme 10.0.16.0/20(rw,sync,no_subtree_check,no_root_squash)" in lines
    assert f"{tmp_path}/srv/exports/tenants/globex 10.0.16.0/20(rw,sync) 10.0.32.5(rw,sync)" in lines


def test_bad_entries_fail_before_any_change(tmp_path: Path) -> None:
    for bad, expected in (
        ([{"tenant": "acme", "path": "exports/acme", "clients": ["10.0.16.0/20"]}], "nfs_export_list[0] (acme)"),
        ([{"tenant": "acme", "path": "/x", "clients": []}], "at least one client"),
        ([EXPORTS[0], {**EXPORTS[0], "tenant": "acme2"}], "a path is exported twice"),
    ):
        run = run_playbook(play(tmp_path, bad), "-i", "localhost,", "-c", "local")
        assert run.rc != 0 and expected in json.dumps(run.results)
        assert not (tmp_path / "srv").exists() and not (tmp_path / "exports.d").exists()
