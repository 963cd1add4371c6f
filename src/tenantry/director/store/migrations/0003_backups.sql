-- Backups (issue 14): per-tenant repositories at the MSP, backup jobs, their runs, the snapshots
-- the repositories hold.  Portable SQL: the same schema runs on PostgreSQL.
-- 0002 is the console's migration; a database that skips it still migrates in order.
CREATE TABLE IF NOT EXISTS backup_repositories (
    tenant_id TEXT PRIMARY KEY,
    location TEXT NOT NULL DEFAULT 'msp',
    quota_bytes BIGINT,
    secondary INTEGER NOT NULL DEFAULT 0,
    check_subset TEXT NOT NULL DEFAULT '5%',
    check_schedule TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    used_bytes BIGINT NOT NULL DEFAULT 0,
    used_at DOUBLE PRECISION,
    secondary_used_bytes BIGINT,
    last_check_at DOUBLE PRECISION,
    last_check_ok INTEGER,
    last_check_message TEXT,
    last_copy_at DOUBLE PRECISION,
    last_copy_ok INTEGER,
    last_copy_message TEXT,
    last_retention_at DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS backup_jobs (
    id {serial_pk},
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    last_run_id BIGINT,
    last_scheduled_at DOUBLE PRECISION,
    UNIQUE (tenant_id, name)
);
CREATE TABLE IF NOT EXISTS backup_runs (
    id {serial_pk},
    tenant_id TEXT NOT NULL,
    job_name TEXT,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    trigger TEXT NOT NULL DEFAULT 'api',
    started_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    message TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{{}}'
);
CREATE INDEX IF NOT EXISTS backup_runs_tenant ON backup_runs (tenant_id, id);
CREATE TABLE IF NOT EXISTS backup_snapshots (
    tenant_id TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    vm TEXT NOT NULL,
    taken_at DOUBLE PRECISION NOT NULL,
    run_id BIGINT,
    job_name TEXT,
    location TEXT NOT NULL DEFAULT 'msp',
    path TEXT NOT NULL DEFAULT '',
    total_bytes BIGINT,
    added_bytes BIGINT,
    uplink_bytes BIGINT,
    copied INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, snapshot_id)
);
CREATE INDEX IF NOT EXISTS backup_snapshots_vm ON backup_snapshots (tenant_id, vm, taken_at);
