-- Several Directors sharing one database (PostgreSQL): who is alive, who holds which tenant's
-- uplink session, what the whole cluster must agree on, and the attempts rate limits count.
-- (A single SQLite Director has these tables too and leaves them nearly empty.)
CREATE TABLE IF NOT EXISTS directors (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    peer_url TEXT NOT NULL,
    version TEXT NOT NULL DEFAULT '',
    started_at DOUBLE PRECISION NOT NULL,
    heartbeat_at DOUBLE PRECISION NOT NULL,
    sessions BIGINT NOT NULL DEFAULT 0
);
-- One row per connected tenant: the newest session wins (connected_at), whichever Director wrote last.
CREATE TABLE IF NOT EXISTS tenant_sessions (
    tenant_id TEXT PRIMARY KEY,
    director_id TEXT NOT NULL,
    connected_at DOUBLE PRECISION NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    version TEXT,
    hostname TEXT
);
CREATE INDEX IF NOT EXISTS tenant_sessions_director ON tenant_sessions (director_id);
-- Facts every Director must share (the CA's fingerprint, the admin token's hash): a Director that
-- disagrees refuses to start instead of splitting the cluster.
CREATE TABLE IF NOT EXISTS cluster_facts (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- Attempts counted by a limiter shared by every Director (enrollment per source address).
CREATE TABLE IF NOT EXISTS attempt_keys (
    key TEXT PRIMARY KEY,
    touched_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    id {serial_pk},
    key TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_key ON attempts (key, at);
-- Tunnels, wherever they listen, so any Director lists them and forwards a change to their owner.
CREATE TABLE IF NOT EXISTS cluster_tunnels (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    director_id TEXT NOT NULL,
    description TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cluster_tunnels_tenant ON cluster_tunnels (tenant_id);
-- Which Director runs each job (console runs, migration 0002): a Director that starts, or sees another
-- one's heartbeat stop, interrupts only the runs of a Director that is gone, never a live one's.
ALTER TABLE runs ADD COLUMN director_id TEXT;
