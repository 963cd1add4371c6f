-- The console and the tenant portal: users and their sessions, jobs (runs) and their events, what
-- jobs learned about each tenant, alarms and their deliveries, drift audit reports.
-- Portable SQL: BIGINT for integers and booleans (0/1), DOUBLE PRECISION for epoch seconds, TEXT for
-- JSON.  "One at a time" rules are UNIQUE columns that hold a key while something is active and NULL
-- afterwards (NULLs never collide, in SQLite as in PostgreSQL).
CREATE TABLE users (
    id {serial_pk},
    username TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    tenant_id TEXT,
    password_hash TEXT NOT NULL,
    full_name TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    disabled BIGINT NOT NULL DEFAULT 0,
    source TEXT NOT NULL DEFAULT 'api',
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until DOUBLE PRECISION,
    last_login DOUBLE PRECISION,
    password_changed_at DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX users_tenant ON users (tenant_id);
-- id is the SHA-256 of the cookie value: a copy of the database holds no usable session.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    address TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);
-- lock_key is the tenant's id while one of its failover-family runs is active: one at a time.
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    tenant_id TEXT,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    lock_key TEXT UNIQUE,
    backend TEXT NOT NULL,
    backend_ref TEXT NOT NULL DEFAULT '',
    params TEXT NOT NULL DEFAULT '{{}}',
    created_by TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION,
    ended_at DOUBLE PRECISION,
    progress TEXT NOT NULL DEFAULT '{{}}',
    result TEXT NOT NULL DEFAULT '{{}}',
    rto_seconds DOUBLE PRECISION,
    message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_tenant ON runs (tenant_id, created_at);
CREATE INDEX runs_state ON runs (state);
CREATE TABLE run_events (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    event TEXT NOT NULL,
    task TEXT NOT NULL DEFAULT '',
    host TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE tenant_facts (
    tenant_id TEXT PRIMARY KEY,
    targets TEXT NOT NULL DEFAULT '[]',
    networks TEXT NOT NULL DEFAULT '[]',
    vms TEXT NOT NULL DEFAULT '[]',
    workloads BIGINT,
    vms_at DOUBLE PRECISION,
    updated_at DOUBLE PRECISION NOT NULL
);
-- open_key is the alarm's key while it is open: one open alarm per condition; history stays.
CREATE TABLE alarms (
    id {serial_pk},
    alarm_key TEXT NOT NULL,
    open_key TEXT UNIQUE,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    tenant_id TEXT,
    subject TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{{}}',
    raised_at DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL,
    acked_at DOUBLE PRECISION,
    acked_by TEXT,
    cleared_at DOUBLE PRECISION,
    cleared_by TEXT
);
CREATE INDEX alarms_tenant ON alarms (tenant_id, id);
CREATE INDEX alarms_key ON alarms (alarm_key, id);
CREATE TABLE alarm_deliveries (
    id {serial_pk},
    alarm_id BIGINT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    channel TEXT NOT NULL,
    what TEXT NOT NULL,
    ok BIGINT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX alarm_deliveries_alarm ON alarm_deliveries (alarm_id);
CREATE TABLE audit_reports (
    id {serial_pk},
    received_at DOUBLE PRECISION NOT NULL,
    source TEXT NOT NULL,
    run_id TEXT,
    summary TEXT NOT NULL DEFAULT '',
    findings TEXT NOT NULL DEFAULT '[]'
);
