-- What the trainer job learns from interactions, read at request time.
-- kind 'similar': collaborative neighbours (people who like i also like j);
-- kind 'next': what people interacted with shortly after i.
-- One row per product with its neighbours in descending weight: a request reads one row per
-- history product instead of one per pair.
CREATE TABLE item_neighbors (
    tenant_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('similar', 'next')),
    product_id text NOT NULL,
    neighbor_ids text[] NOT NULL,
    weights real[] NOT NULL,
    PRIMARY KEY (tenant_id, kind, product_id)
);

CREATE TABLE training_runs (
    id bigserial PRIMARY KEY,
    tenant_id text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    interactions bigint NOT NULL,
    last_interaction_id bigint NOT NULL,
    products integer NOT NULL,
    seconds real NOT NULL,
    peak_rss_mib real NOT NULL
);
CREATE INDEX training_runs_tenant_idx ON training_runs (tenant_id, id DESC);

-- Popularity as of the last training run, in [0, 1]: interactions, recent ones weighing more.
CREATE TABLE product_popularity (
    tenant_id text NOT NULL,
    product_id text NOT NULL,
    score real NOT NULL,
    PRIMARY KEY (tenant_id, product_id)
);
CREATE INDEX product_popularity_rank_idx ON product_popularity (tenant_id, score DESC);
