-- The Director's first schema: tenants, their certificates, Expert Settings, the event log.
-- IF NOT EXISTS: databases created before numbered migrations already have these tables.
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    contact TEXT NOT NULL DEFAULT '',
    workload_quota BIGINT NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    enroll_hash TEXT,
    enroll_expires_at DOUBLE PRECISION,
    enrolled_at DOUBLE PRECISION,
    revoked_at DOUBLE PRECISION,
    last_seen DOUBLE PRECISION,
    last_address TEXT,
    version TEXT,
    hostname TEXT,
    state_since DOUBLE PRECISION,
    direct_connect TEXT
);
CREATE TABLE IF NOT EXISTS certificates (
    serial TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    issued_at DOUBLE PRECISION NOT NULL,
    not_after DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS certificates_tenant ON certificates (tenant_id);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id {serial_pk},
    ts DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    tenant_id TEXT,
    message TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{{}}'
);
CREATE INDEX IF NOT EXISTS events_tenant ON events (tenant_id, id);
