-- Client-supplied event ids make interaction writes idempotent: a retried request (or a re-run of
-- `make demo`) with the same event_id stores nothing twice. Interactions without one are always stored.
ALTER TABLE interactions ADD COLUMN event_id text;
CREATE UNIQUE INDEX interactions_event_idx ON interactions (tenant_id, event_id) WHERE event_id IS NOT NULL;
-- Popularity aggregates a tenant's interactions by product, newest weighing most.
CREATE INDEX interactions_tenant_time_idx ON interactions (tenant_id, occurred_at DESC);
