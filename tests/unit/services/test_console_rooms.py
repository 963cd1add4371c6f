"""The console's rooms on their own: accounts (sessions, lockout), runs and alarms on a real database (SQLite
and PostgreSQL, the ``target`` fixture) with a fake clock, the authorization table, the event reader, the
timeline picture, the extra vars file and the alarm rules."""

from __future__ import annotations

import asyncio
import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tenantry.director.accounts import ACTIONS, ROLES, Accounts, LoginRefused, Principal, authorize
from tenantry.director.alarms import AlarmManager, TenantView
from tenantry.director.errors import DirectorError
from tenantry.director.jobs.backend import extravars_yaml
from tenantry.director.jobs.manager import _checked
from tenantry.director.jobs.progress import Progress
from tenantry.director.jobs.timeline import svg
from tenantry.director.settings import ExpertSettings, apply_changes
from tenantry.director.store import Store

REPO = Path(__file__).resolve().parents[3]


class FakeHasher:
    """Stands in for Argon2id, whose cost is not under test here (the real one runs in the integration tests)."""

    def hash(self, secret: str) -> str:
        return "plain$" + secret

    def verify(self, secret: str, phc: str) -> bool:
        return phc == "plain$" + secret


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(target: Path | str) -> Iterator[Store]:
    s = Store(target)
    yield s
    s.close()


@pytest.fixture
def accounts(store: Store) -> tuple[Accounts, Clock, list[tuple[str, str]], dict[str, Any]]:
    clock = Clock()
    events: list[tuple[str, str]] = []
    box: dict[str, Any] = {"settings": ExpertSettings()}
    acc = Accounts(
        store.db,
        settings=lambda: box["settings"],
        hasher=FakeHasher(),
        tenant_name=lambda tid: {"t-1": "acme"}.get(tid),
        events=lambda kind, message, tenant_id=None, **data: events.append((kind, message)),
        clock=clock,
    )
    return acc, clock, events, box


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_sessions_end_when_idle_or_at_their_absolute_end(accounts: Any) -> None:
    acc, clock, _events, box = accounts
    box["settings"] = apply_changes(ExpertSettings(), {"session_idle_timeout": 60, "session_absolute_timeout": 300})
    run(acc.create_user(username="Ops", role="admin", password="x" * 12))
    info = run(acc.login("ops", "x" * 12, "10.0.0.1"))
    assert acc.resolve(info.token).username == "ops"
    for _ in range(5):  # used every 50 s: idle never, but the absolute end comes
        clock.now += 50
        assert acc.resolve(info.token) is not None
    clock.now += 50
    assert acc.resolve(info.token) is None  # 300 s after login
    info = run(acc.login("ops", "x" * 12, "10.0.0.1"))
    clock.now += 61
    assert acc.resolve(info.token) is None  # idle past 60 s
    assert acc.resolve("not-a-session") is None and acc.resolve(None) is None


def test_lockout_is_counted_before_checking_and_refuses_the_right_password(accounts: Any) -> None:
    acc, clock, events, box = accounts
    box["settings"] = apply_changes(
        ExpertSettings(),
        {"login_lockout_failures": 3, "login_lockout_seconds": 600, "login_failures_per_minute": 1000},
    )
    run(acc.create_user(username="ops", role="operator", password="right password"))

    async def attempts() -> list[Any]:
        # Ten wrong attempts at once: each claims its count before its password is checked.
        return await asyncio.gather(
            *(acc.login("ops", "wrong password", f"10.0.0.{i}") for i in range(10)), return_exceptions=True
        )

    results = run(attempts())
    assert all(isinstance(r, LoginRefused) for r in results)
    checked = [m for k, m in events if k == "login_failed" and "wrong password" in m]
    assert len(checked) == 3  # only three were ever checked against the account
    with pytest.raises(LoginRefused) as refused:
        run(acc.login("ops", "right password", "10.0.0.99"))
    assert refused.value.message == LoginRefused().message  # the same answer as for a wrong password
    with pytest.raises(LoginRefused) as unknown:
        run(acc.login("nobody", "right password", "10.0.0.98"))
    assert unknown.value.message == refused.value.message  # nothing tells an account exists
    clock.now += 601
    assert run(acc.login("ops", "right password", "10.0.0.99")).principal.role == "operator"


def test_logins_per_source_address_are_limited(accounts: Any) -> None:
    acc, _clock, _events, box = accounts
    box["settings"] = apply_changes(ExpertSettings(), {"login_failures_per_minute": 3})
    for _ in range(3):
        with pytest.raises(LoginRefused):
            run(acc.login("nobody", "x", "192.0.2.7"))
    with pytest.raises(DirectorError) as limited:
        run(acc.login("nobody", "x", "192.0.2.7"))
    assert limited.value.status == 429
    with pytest.raises(LoginRefused):
        run(acc.login("nobody", "x", "192.0.2.8"))  # another address is not affected


def test_a_new_password_or_a_disabled_account_ends_every_session(accounts: Any) -> None:
    acc, _clock, _events, _box = accounts
    run(acc.create_user(username="ann", role="tenant", tenant_id="t-1", password="y" * 12))
    one = run(acc.login("ann", "y" * 12, "a"))
    two = run(acc.login("ann", "y" * 12, "b"))
    assert acc.resolve(one.token).tenant_name == "acme"
    run(acc.update_user("ann", {"password": "z" * 12}))
    assert acc.resolve(one.token) is None and acc.resolve(two.token) is None
    three = run(acc.login("ann", "z" * 12, "a"))
    run(acc.update_user("ann", {"disabled": True}))
    assert acc.resolve(three.token) is None
    with pytest.raises(LoginRefused):
        run(acc.login("ann", "z" * 12, "a"))


def test_users_are_checked(accounts: Any) -> None:
    acc, *_ = accounts
    for bad in (
        {"username": "ann", "role": "root", "password": "x" * 12},
        {"username": "ann", "role": "tenant", "password": "x" * 12},
        {"username": "ann", "role": "admin", "tenant_id": "t-1", "password": "x" * 12},
        {"username": "ann", "role": "admin", "password": "short"},
        {"username": "Ann Smith", "role": "admin", "password": "x" * 12},
    ):
        with pytest.raises(DirectorError) as exc:
            run(acc.create_user(**bad))
        assert exc.value.status == 422
    run(acc.create_user(username="ann", role="admin", password="x" * 12))
    with pytest.raises(DirectorError) as exc:
        run(acc.create_user(username="ANN", role="admin", password="x" * 12))
    assert exc.value.status == 409
    assert "password_hash" not in acc.user("ann").public(None)


def test_authorize_is_the_one_table() -> None:
    tenant_user = Principal("user", "ann", "tenant", tenant_id="t-1", tenant_name="acme")
    assert authorize(tenant_user, "portal.run", "t-1") is tenant_user
    with pytest.raises(DirectorError) as other:
        authorize(tenant_user, "portal.read", "t-2")
    assert other.value.status == 404  # another tenant's thing does not exist for it
    with pytest.raises(DirectorError) as console:
        authorize(tenant_user, "fleet.read")
    assert console.value.status == 403
    with pytest.raises(DirectorError) as nobody:
        authorize(None, "fleet.read")
    assert nobody.value.status == 401
    assert set(ACTIONS["admin"]) == {"admin"} and "tenant" not in ACTIONS["fleet.read"]
    assert all(set(roles) <= set(ROLES) for roles in ACTIONS.values())
    # docs/console.md shows the same table.
    doc = (REPO / "docs" / "console.md").read_text()
    for action, roles in ACTIONS.items():
        line = next((li for li in doc.splitlines() if li.startswith(f"| `{action}` ")), None)
        assert line is not None, f"docs/console.md lacks {action}"
        cells = [c.strip() for c in line.strip("|").split("|")]
        marked = {role for role, cell in zip(ROLES, cells[1:5], strict=True) if cell == "yes"}
        assert marked == set(roles), action


def test_run_parameters_are_checked() -> None:
    assert _checked("test", {"vms": ["b", "a", "a"], "tenant": "other"}) == {"vms": ["a", "b"]}
    assert _checked("failover", {"vms": [], "destination_vlan": 310}) == {"vms": [], "destination_vlan": 310}
    for kind, params in (
        ("test", {"vms": ["{{ lookup('pipe', 'id') }}"]}),
        ("test", {"vms": "a,b"}),
        ("failover", {"vms": ["a"]}),
        ("failover", {"vms": ["a"], "destination_vlan": 5000}),
        ("failover", {"vms": ["a"], "destination_vlan": True}),
    ):
        with pytest.raises(DirectorError):
            _checked(kind, params)


def test_extra_vars_a_user_typed_are_never_templates() -> None:
    yaml = pytest.importorskip("yaml")
    text = extravars_yaml({"tenant": "acme", "vms": ["a{{x}}", 'b"c'], "cleanup": True, "n": 3}, {"tenant", "vms"})
    assert text.count("!unsafe") == 3
    loaded = yaml.load(text, Loader=_TagLoader(yaml))
    assert loaded == {"tenant": "acme", "vms": ["a{{x}}", 'b"c'], "cleanup": True, "n": 3}


def _TagLoader(yaml: Any) -> Any:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
    return Loader


def test_progress_follows_the_failover_role_and_keeps_the_report() -> None:
    p = Progress()
    p.feed({"event": "playbook_on_task_start", "event_data": {"task": "Follow the run, step by step"}})
    follow = {
        "run": {"run_id": "r1", "mode": "test", "flow": "test", "status": "running"},
        "steps": [{"index": 1, "name": "read", "title": "read", "state": "done", "done": 2}],
        "vm_states": {"vm1": {"read": "done"}, "vm2": {"read": "done"}},
        "line": "step 1/9 read: done",
        "plan_lines": ["test plan"],
    }
    p.feed({"event": "runner_item_on_ok", "event_data": {"res": follow}})
    assert p.progress()["vms"] == {"vm1": {"read": "done"}, "vm2": {"read": "done"}}
    assert p.progress()["lines"] == ["step 1/9 read: done"] and p.task == "Follow the run, step by step"
    report = {
        "run_id": "r1",
        "tenant": "acme",
        "mode": "test",
        "status": "done",
        "rto_seconds": 1.5,
        "steps": [{"step": "read", "state": "done", "done": 2}, {"step": "power_on", "state": "done", "done": 2}],
        "vms": {"vm1": {"steps": {"power_on": {"state": "done", "start_offset": 1.0, "end_offset": 1.5}}}},
    }
    p.feed({"event": "runner_on_ok", "event_data": {"res": {"report": report, "summary": ["s"], "status": "done"}}})
    assert p.result()["report"]["rto_seconds"] == 1.5 and p.result()["summary"] == ["s"]
    assert [s["name"] for s in p.progress()["steps"]] == ["read", "power_on"]
    p.feed({"event": "runner_on_failed", "event_data": {"res": {"msg": "refused before any change"}}})
    assert p.error == "refused before any change"
    p.feed({"event": "runner_on_ok", "event_data": {"res": {"tenantry_vms": {"vms": [{"name": "vm1"}]}}}})
    assert p.result()["listing"] == {"vms": [{"name": "vm1"}]}


def test_timeline_is_a_standalone_svg_with_the_rto_marked() -> None:
    report = json.loads((Path(__file__).parent / "data" / "rto_report.json").read_text())
    picture = svg(report)
    root = ET.fromstring(picture)  # well-formed XML
    assert root.tag.endswith("svg") and "<script" not in picture and "href" not in picture
    assert f"RTO {report['rto_seconds']:.1f} s" in picture
    bars = [
        e for e in root.iter() if e.tag.endswith("rect") and e.find("{http://www.w3.org/2000/svg}title") is not None
    ]
    assert len(bars) == sum(len(v["steps"]) for v in report["vms"].values())
    evil = dict(report, tenant="<script>alert(1)</script>")
    assert "<script>" not in svg(evil)


class _Run:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(
            dict(id="r1", tenant_id="t-1", kind="test", state="failed", message="boom", started_at=0.0, created_at=0.0)
            | kw
        )


def test_alarm_rules_raise_and_clear(store: Store) -> None:
    box: dict[str, Any] = {
        "tenants": [TenantView("t-1", "acme", "remote", "offline", 1000.0, 5)],
        "workloads": {"t-1": 7},
        "settings": apply_changes(ExpertSettings(), {"alarm_offline_after": 60}),
    }
    events: list[str] = []
    alarms = AlarmManager(
        store.db,
        settings=lambda: box["settings"],
        tenants=lambda: box["tenants"],
        workloads=lambda: box["workloads"],
        stuck_runs=lambda older: [],
        events=lambda kind, message, tenant_id=None, **data: events.append(kind),
        console_url=lambda: "https://director:4443",
    )
    alarms.evaluate(now=1030.0)
    assert {a.kind for a in alarms.records.open_alarms()} == {"quota_exceeded"}  # offline for 30 s only
    alarms.evaluate(now=1061.0)
    assert {a.kind for a in alarms.records.open_alarms()} == {"quota_exceeded", "transporter_offline"}
    alarms.evaluate(now=1062.0)
    assert len(alarms.records.open_alarms()) == 2 and events.count("alarm_raised") == 2  # raised once
    alarms.run_finished(_Run())
    assert any(a.kind == "run_failed" for a in alarms.records.open_alarms())
    alarms.audit(
        [{"check": "mac_shared", "key": "mac:00:50:56:00:00:01", "tenant": "acme", "message": "two vNICs"}],
        {"acme": "t-1"},
    )
    box["tenants"] = [TenantView("t-1", "acme", "remote", "online", 1070.0, 5)]
    box["workloads"] = {"t-1": 5}
    alarms.evaluate(now=1080.0)
    alarms.run_finished(_Run(id="r2", state="successful"))
    alarms.audit([], {"acme": "t-1"})
    assert alarms.records.open_alarms() == []
    history = alarms.records.history()
    assert {a.kind for a in history} == {"quota_exceeded", "transporter_offline", "run_failed", "drift"}
    assert all(a.cleared_by for a in history)


def _run_row(run_id: str, tenant_id: str | None, director_id: str | None, state: str = "running") -> Any:
    from tenantry.director.jobs.records import RunRow

    return RunRow(
        id=run_id,
        tenant_id=tenant_id,
        kind="test",
        state=state,
        lock_key=tenant_id,
        backend="runner",
        backend_ref="",
        params={},
        created_by="ada",
        created_at=1.0,
        started_at=2.0,
        ended_at=None,
        director_id=director_id,
    )


def test_runs_one_per_tenant_and_a_restart_interrupts_only_runs_no_live_director_follows(
    store: Store, tmp_path: Path
) -> None:
    """Runs on both stores; with several Directors (owner and alive given) a Director interrupts its own
    previous process's runs at start and a gone Director's at any time, never a live one's."""
    from tenantry.director.config import JobsConfig
    from tenantry.director.jobs.manager import JobManager

    def manager(owner: str | None, alive: set[str]) -> JobManager:
        return JobManager(
            store.db,
            config=JobsConfig.model_validate({}),
            jobs_dir=tmp_path / "jobs",
            settings=ExpertSettings,
            events=lambda *a, **k: None,
            owner=owner,
            alive=lambda: alive,
        )

    jobs = manager("dir-a", {"dir-a", "dir-b"})
    records = jobs.records
    assert records.add(_run_row("r-a", "t-a", "dir-a"))
    assert not records.add(_run_row("r-a2", "t-a", "dir-b"))  # t-a has its run already
    for run_id, tenant, owner in (("r-b", "t-b", "dir-b"), ("r-c", "t-c", "dir-c"), ("r-old", "t-o", None)):
        assert records.add(_run_row(run_id, tenant, owner))
    assert records.get("r-b") is not None and records.get("r-b").director_id == "dir-b"  # type: ignore[union-attr]
    assert {r.id for r in jobs.orphans()} == {"r-c", "r-old"}  # while running: only the gone Director's
    assert jobs.recover() == 3  # at start: its own previous process's too (r-a), never dir-b's (alive)
    states = {r.id: (r.state, r.lock_key) for r in records.recent(limit=10)}
    assert states["r-b"] == ("running", "t-b")
    assert all(states[i] == ("interrupted", None) for i in ("r-a", "r-c", "r-old"))
    assert "dir-c" in (records.get("r-c").message or "")  # type: ignore[union-attr]
    assert records.add(_run_row("r-a3", "t-a", "dir-a"))  # t-a is free again
    assert manager("dir-b", {"dir-b"}).recover(starting=False) == 1  # dir-a stopped beating: r-a3
    assert manager(None, set()).recover() == 1  # one Director: every active run is its own (r-b)


def test_two_directors_opening_one_alarm_or_one_run_at_once_get_one_each(target: Path | str) -> None:
    """Stores of four Directors on one database race for one alarm and one tenant's run lock: one wins
    each, the others see it (no error, no second alarm to deliver, no second run)."""
    import threading

    from tenantry.director.alarms.records import AlarmRecords
    from tenantry.director.jobs.records import RunRecords

    Store(target).close()  # migrated once
    stores = [Store(target) for _ in range(4)]
    alarms: list[Any] = []
    runs: list[bool] = []
    barrier = threading.Barrier(len(stores))

    def director(i: int, s: Store) -> None:
        barrier.wait(timeout=30)
        try:
            alarms.append(AlarmRecords(s.db).raise_("offline:t-1", "transporter_offline", "major", "t-1", "s", "m", {}))
        except Exception as exc:
            alarms.append(exc)
        barrier.wait(timeout=30)
        try:
            runs.append(RunRecords(s.db).add(_run_row(f"r-{i}", "t-1", f"dir-{i}")))
        except Exception as exc:
            runs.append(exc)  # type: ignore[arg-type]

    threads = [threading.Thread(target=director, args=(i, s)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [a for a in [*alarms, *runs] if isinstance(a, Exception)], (alarms, runs)
    assert len([a for a in alarms if a is not None]) == 1 and len(alarms) == 4
    assert sorted(runs) == [False, False, False, True]
    assert len(AlarmRecords(stores[0].db).open_alarms()) == 1
    for s in stores:
        s.close()


def test_a_run_s_report_files_are_served_by_every_director_from_its_record(store: Store, tmp_path: Path) -> None:
    """A run finished on one Director: another Director sharing the database serves its report, timeline and
    summary (written from the run's record, the same bytes), and so does the first after its files were
    pruned; a run still going has none, and only the three names exist."""
    from tenantry.director.config import JobsConfig
    from tenantry.director.jobs.backend import JobOutcome
    from tenantry.director.jobs.manager import JobManager

    def manager(owner: str) -> JobManager:
        return JobManager(
            store.db,
            config=JobsConfig.model_validate({}),
            jobs_dir=tmp_path / owner / "jobs",
            settings=ExpertSettings,
            events=lambda *a, **k: None,
            owner=owner,
            alive=lambda: {"dir-a", "dir-b"},
        )

    a, b = manager("dir-a"), manager("dir-b")
    assert a.records.add(_run_row("r-1", "t-1", "dir-a"))
    going = b.records.get("r-1")
    assert going is not None and b.report_file(going, "report.json") is None  # nothing yet
    report = {
        "run_id": "r-1",
        "tenant": "acme",
        "mode": "test",
        "status": "done",
        "rto_seconds": 2.5,
        "steps": [{"step": "power_on", "state": "done", "done": 1}],
        "vms": {"vm1": {"steps": {"power_on": {"state": "done", "start_offset": 1.0, "end_offset": 2.5}}}},
    }
    progress = Progress()
    progress.feed({"event": "runner_on_ok", "event_data": {"res": {"report": report, "summary": ["RTO 2.5 s"]}}})
    a._finish(going, JobOutcome("successful"), progress)

    done = b.records.get("r-1")
    assert done is not None and done.state == "successful"
    for name in ("report.json", "timeline.svg", "summary.txt"):
        here, there = a.report_file(done, name), b.report_file(done, name)
        assert here is not None and there is not None and here != there, name
        assert there.read_bytes() == here.read_bytes(), name
        assert there.stat().st_mode & 0o777 == 0o600, name
    assert json.loads((tmp_path / "dir-b/jobs/r-1/report.json").read_text())["rto_seconds"] == 2.5
    assert (tmp_path / "dir-b/jobs/r-1/summary.txt").read_text() == "RTO 2.5 s\n"
    assert "vm1" in (tmp_path / "dir-b/jobs/r-1/timeline.svg").read_text()
    written = sorted(p.name for p in (tmp_path / "dir-b/jobs/r-1").iterdir())
    assert written == ["report.json", "summary.txt", "timeline.svg"]  # no temporary file left
    for other in ("events", "../r-1/report.json", "params.json"):
        assert b.report_file(done, other) is None, other
    # Pruned where it ran: served again from the record.
    shutil.rmtree(tmp_path / "dir-a/jobs/r-1")
    again = a.report_file(done, "report.json")
    assert again is not None and json.loads(again.read_text()) == report
