"""The Director's store: one interface, the same tests against both backends (STYLE rule 29).

``sqlite`` is a file in a temporary directory; ``postgresql`` is a real PostgreSQL server
(Debian's binaries, started once per session by the ``postgres_server`` fixture), a fresh
database per test: the ``target`` fixture of ``conftest.py``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tenantry.director.store import (
    Database,
    IntegrityError,
    SchemaError,
    Store,
    TenantQuery,
    TenantRow,
    stored_state,
)
from tenantry.director.store import db as dbmod
from tenantry.protocol.identity import new_tenant_id


@pytest.fixture
def store(target: Path | str) -> Any:
    s = Store(target)
    yield s
    s.close()


def _tenant(name: str, **extra: Any) -> TenantRow:
    now = time.time()
    values: dict[str, Any] = dict(
        id=new_tenant_id(),
        name=name,
        kind="remote",
        description="",
        contact="",
        workload_quota=0,
        created_at=now,
        updated_at=now,
        enroll_hash="$argon2id$x",
        enroll_expires_at=now + 3600,
        enrolled_at=None,
        revoked_at=None,
        last_seen=None,
        last_address=None,
        version=None,
        hostname=None,
        state_since=now,
        direct_connect=None,
    )
    values.update(extra)
    return TenantRow(**values)


def test_migrations_apply_once_and_a_newer_database_is_refused(target: Path | str) -> None:
    db = Database(target)
    assert db.migrate() == [v for v, _n, _s in dbmod.migrations()]
    assert db.migrate() == []
    newest = db.schema_version()
    assert newest == dbmod.migrations()[-1][0]
    db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", (newest + 1, "x", 0.0))
    with pytest.raises(SchemaError, match="newer than this Director"):
        db.migrate()
    db.close()


def test_migrations_are_applied_by_number_whatever_is_missing(target: Path | str, monkeypatch: Any) -> None:
    """Each room owns its numbers (0002 console, 0003 backups, 0004 cluster): 0004 applies on a database
    of 0001 and 0002 with no 0003 shipped, and a 0003 shipped later is applied after 0004."""
    shipped = dbmod.migrations()
    assert [v for v, _n, _s in shipped][:4] == [1, 2, 3, 4]
    without_3 = [m for m in shipped if m[0] != 3]  # as a release that had the cluster before the backups
    db = Database(target)
    monkeypatch.setattr(dbmod, "migrations", lambda: [m for m in shipped if m[0] <= 2])
    assert db.migrate() == [1, 2]  # a database from before the backups and the cluster
    monkeypatch.setattr(dbmod, "migrations", lambda: without_3)
    assert db.migrate() == [4]
    assert db.row("SELECT COUNT(*) FROM runs WHERE director_id IS NULL") == (0,)  # 0004 altered 0002's table
    monkeypatch.setattr(dbmod, "migrations", lambda: shipped)
    assert db.migrate() == [3]  # the missing one, when it arrives
    assert db.rows("SELECT version FROM schema_migrations ORDER BY version") == [(1,), (2,), (3,), (4,)]
    db.close()


def test_tenants_round_trip_in_name_order(store: Store) -> None:
    b = _tenant("beta", direct_connect={"address": "10.0.0.1:9446", "auth": "psk", "psk": "x" * 20})
    a = _tenant("Alpha", kind="local")
    store.add_tenant(b)
    store.add_tenant(a)
    assert store.tenant(b.id) == b
    assert store.tenant_by_name("Alpha") == a
    assert [t.name for t in store.tenants()] == ["Alpha", "beta"]  # binary order on both backends
    store.update_tenant(b.id, description="moved", direct_connect={"address": "h:1", "auth": "certificate"})
    got = store.tenant(b.id)
    assert got is not None and got.description == "moved"
    assert got.direct_connect == {"address": "h:1", "auth": "certificate"}
    assert got.updated_at >= b.updated_at
    store.delete_tenant(a.id)
    assert store.tenant(a.id) is None


def test_tenant_queries_filter_count_and_page_in_the_database(store: Store) -> None:
    """The fleet's queries: the stored state in SQL agrees with :func:`stored_state` for every combination,
    the text filter matches name or description in any case with ``%`` and ``_`` taken literally, a
    subquery narrows the set, pages follow the name order, counts are aggregates."""
    now = time.time()
    combos = [
        (kind, revoked, enrolled) for kind in ("remote", "local") for revoked in (None, now) for enrolled in (None, now)
    ]
    rows = [
        _tenant(f"t{i:03d}", kind=k, revoked_at=r, enrolled_at=e, description="Acme 50%_off" if i == 7 else "")
        for i, (k, r, e) in enumerate(combos * 5)
    ]
    for row in reversed(rows):
        store.add_tenant(row)
    expected = {r.id: stored_state(r.kind, r.revoked_at, r.enrolled_at) for r in rows}
    assert dict(store.tenant_states()) == expected
    assert [tid for tid, _s in store.tenant_states()] == [r.id for r in rows]  # name order
    for state in ("local", "revoked", "awaiting_enrollment", "offline"):
        count = store.count_tenants(TenantQuery(stored_states=(state,)))
        assert count == list(expected.values()).count(state) == {"local": 20, "revoked": 10}.get(state, 5)
    assert store.count_tenants() == 40
    assert [(b.id, b.name, b.kind) for b in store.tenant_briefs()] == [(r.id, r.name, r.kind) for r in rows]
    offline = TenantQuery(stored_states=("offline",))
    assert store.count_tenants(offline) == 5
    assert [r.name for r in store.tenants_where(offline, limit=2, offset=2)] == ["t017", "t025"]
    assert [r.name for r in store.tenants_where(TenantQuery(), limit=3, offset=38)] == ["t038", "t039"]
    assert store.tenants_where(TenantQuery(), limit=3, offset=40) == []
    assert store.count_tenants(TenantQuery(text="T03")) == 10  # t003, t030..t039
    assert [r.name for r in store.tenants_where(TenantQuery(text="50%_"), limit=10)] == ["t007"]
    assert store.count_tenants(TenantQuery(text="5_%")) == 0  # not wildcards
    assert store.count_tenants(TenantQuery(text="ACME")) == 1
    some = "SELECT id FROM tenants WHERE name IN ('t001', 't002', 't009', 't017')"
    narrowed = TenantQuery(stored_states=("offline",), within=(some,))
    assert [r.name for r in store.tenants_where(narrowed, limit=10)] == ["t001", "t009", "t017"]
    picked = [rows[30].id, "no-such-id", rows[4].id]
    assert [r.name for r in store.tenants_by_ids(picked)] == ["t030", "t004"]
    assert store.tenant_names([rows[1].id, rows[1].id, "no-such-id"]) == {rows[1].id: "t001"}


def test_a_duplicate_name_is_an_integrity_error(store: Store) -> None:
    store.add_tenant(_tenant("same"))
    with pytest.raises(IntegrityError):
        store.add_tenant(_tenant("same"))
    if store.db.dialect == "sqlite":  # still what it was before there were two backends
        with pytest.raises(sqlite3.IntegrityError):
            store.add_tenant(_tenant("same"))
    assert len(store.tenants()) == 1  # the failed statements left nothing behind


def test_enrollment_credentials_burn_once_even_when_raced(target: Path | str) -> None:
    first = Store(target)
    row = _tenant("raced")
    first.add_tenant(row)
    others = [Store(target) for _ in range(4)]
    results: list[bool] = []
    barrier = threading.Barrier(len(others))

    def burn(s: Store) -> None:
        barrier.wait()
        results.append(s.consume_enrollment(row.id, "$argon2id$x"))

    threads = [threading.Thread(target=burn, args=(s,)) for s in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    burnt = first.tenant(row.id)
    assert burnt is not None and burnt.enroll_hash is None and burnt.enrolled_at is not None
    for s in [first, *others]:
        s.close()


def test_certificates_revocation_supersession_and_the_session_check(store: Store) -> None:
    row = _tenant("certs")
    store.add_tenant(row)
    store.add_certificate("aa", row.id, time.time() + 100)
    time.sleep(0.01)
    store.add_certificate("bb", row.id, time.time() + 200)
    check = store.session_check("bb")
    assert check is not None
    assert (check.cert_tenant_id, check.cert_revoked_at, check.tenant_kind, check.other_valid) == (
        row.id,
        None,
        "remote",
        1,
    )
    assert store.supersede_certificates(row.id, "bb") == 1
    old = store.certificate("aa")
    assert old is not None and old.revoked_at is not None
    check = store.session_check("bb")
    assert check is not None and check.other_valid == 0
    assert store.session_check("zz") is None
    assert store.revoke_certificates(row.id) == 1
    store.delete_tenant(row.id)
    check = store.session_check("bb")
    assert check is not None and check.tenant_kind is None and check.cert_revoked_at is not None


def test_settings_upsert(store: Store) -> None:
    store.save_settings({"a": 1, "b": [1, "x"]})
    store.save_settings({"a": 2.5})
    assert store.settings() == {"a": 2.5, "b": [1, "x"]}


def test_events_ids_cursor_filters_and_deferred_writes(store: Store) -> None:
    row = _tenant("ev")
    store.add_tenant(row)
    ids = [store.add_event("k1", f"m{i}", row.id if i % 2 else None, n=i) for i in range(5)]
    assert ids == sorted(ids) and ids[0] > 0
    assert [e.message for e in store.events(limit=2)] == ["m3", "m4"]  # newest two, oldest first
    assert [e.message for e in store.events(after_id=ids[1])] == ["m2", "m3", "m4"]
    assert [e.data["n"] for e in store.events(tenant_id=row.id)] == [1, 3]
    store.add_event_later("connected", "later", row.id, address="1.2.3.4:5")
    store.touch_status_later(row.id, last_address="1.2.3.4:5", last_seen=123.0)
    assert store.deferred == 2
    # A read sees every earlier write: the deferred ones are written first.
    assert store.events(kind="connected")[0].data == {"address": "1.2.3.4:5"}
    got = store.tenant(row.id)
    assert got is not None and got.last_address == "1.2.3.4:5" and got.last_seen == 123.0
    assert store.deferred == 0


def test_one_dialect_placeholders_literals_and_numbers(store: Store) -> None:
    db = store.db
    db.execute("CREATE TABLE IF NOT EXISTS scratch (k TEXT PRIMARY KEY, n BIGINT NOT NULL, f DOUBLE PRECISION)")
    db.executemany("INSERT INTO scratch (k, n, f) VALUES (?, ?, ?)", [("a?b", 1, 0.5), ("50%", 2, None), ("c", 4, 1.5)])
    # A ? or % inside a literal is data, not a placeholder.
    assert db.row("SELECT n FROM scratch WHERE k = 'a?b'") == (1,)
    assert db.row("SELECT n FROM scratch WHERE k LIKE '50%' AND n = ?", (2,)) == (2,)
    assert db.row("SELECT COUNT(*), SUM(n), MAX(f) FROM scratch") == (3, 7, 1.5)
    assert db.insert("INSERT INTO scratch (k, n) VALUES (?, ?)", ("d", 8)) in (0, 4)  # no identity column here
    event = db.insert("INSERT INTO events (ts, kind, message) VALUES (?, ?, ?)", (1.0, "k", "m"))
    assert event > 0 and db.insert("INSERT INTO events (ts, kind, message) VALUES (?, ?, ?)", (2.0, "k", "m")) > event
    with pytest.raises(RuntimeError), db.tx():
        db.execute("UPDATE scratch SET n = 100")
        raise RuntimeError("roll it back")
    assert db.row("SELECT MAX(n) FROM scratch") == (8,)
    with db.tx(), db.tx():  # nested: one transaction
        db.execute("UPDATE scratch SET n = n + 1 WHERE k = ?", ("c",))
    assert db.row("SELECT n FROM scratch WHERE k = ?", ("c",)) == (5,)


@pytest.mark.integration
def test_postgres_directors_starting_together_migrate_once(postgres_server: Any) -> None:
    url = postgres_server.create_database()
    applied: list[list[int]] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        db = Database(url)
        barrier.wait()
        applied.append(db.migrate())
        db.close()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(map(len, applied)) == [0, 0, 0, len(dbmod.migrations())]


@pytest.mark.integration
def test_postgres_a_lost_connection_costs_no_statement_outside_a_transaction(postgres_server: Any) -> None:
    store = Store(postgres_server.create_database())
    store.add_tenant(_tenant("survivor"))
    pid = store.db.row("SELECT pg_backend_pid()")
    assert pid is not None
    postgres_server.psql(f"SELECT pg_terminate_backend({int(pid[0])})")
    assert store.tenant_by_name("survivor") is not None  # reconnected and retried once
    assert "password" not in store.db.describe()
    store.close()


def test_shared_attempt_limiter_counts_before_the_work_across_processes(target: Path | str) -> None:
    from tenantry.director.limits import SharedAttemptLimiter

    now = [1000.0]
    a, b = Store(target), Store(target)  # two Directors on one database
    ra = SharedAttemptLimiter(a.db, window=60, clock=lambda: now[0])
    rb = SharedAttemptLimiter(b.db, window=60, clock=lambda: now[0])
    assert [(ra if i % 2 else rb).begin("10.0.0.1", 3) == 0 for i in range(10)] == [True] * 3 + [False] * 7
    assert rb.begin("10.0.0.1", 3) == pytest.approx(60.0)
    assert ra.begin("10.0.0.2", 3) == 0
    ra.succeeded("10.0.0.2")  # a success is taken back out of the count
    assert [rb.begin("10.0.0.2", 3) == 0 for _ in range(4)] == [True, True, True, False]
    now[0] += 61.0  # the window slides
    assert ra.begin("10.0.0.1", 3) == 0
    a.close()
    b.close()
