-- API keys and per-tenant settings. A key belongs to one tenant and has one role; only the
-- SHA-256 of the key is stored (keys are 256-bit random tokens, so a plain hash suffices).
-- Per-tenant settings override the services' defaults where not NULL.
ALTER TABLE tenants
    ADD COLUMN catalogue_quota integer CHECK (catalogue_quota >= 0),
    ADD COLUMN rate_per_s real CHECK (rate_per_s > 0),
    ADD COLUMN rate_burst integer CHECK (rate_burst >= 1);

CREATE TABLE api_keys (
    id text PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (id),
    role text NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    label text NOT NULL DEFAULT '',
    key_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, created_at);
