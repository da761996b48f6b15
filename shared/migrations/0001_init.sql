-- The catalogue, its vectors, users and their interactions. Every table carries tenant_id.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE tenants (
    id text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tenants (id) VALUES ('default');

-- A deleted product stays as a tombstone (deleted = true) so that an older upsert processed
-- later cannot bring it back: every write carries a version and only a higher version wins.
CREATE TABLE products (
    tenant_id text NOT NULL REFERENCES tenants (id),
    id text NOT NULL,
    title text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    genres text[] NOT NULL DEFAULT '{}',
    year integer,
    metadata jsonb NOT NULL DEFAULT '{}',
    content_hash text NOT NULL DEFAULT '',
    version bigint NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX products_genres_idx ON products USING gin (genres);
CREATE INDEX products_year_idx ON products (tenant_id, year);
CREATE INDEX products_title_idx ON products (tenant_id, lower(title) text_pattern_ops);

CREATE TABLE product_vectors (
    tenant_id text NOT NULL,
    product_id text NOT NULL,
    model text NOT NULL,
    content_hash text NOT NULL,
    embedding vector(384) NOT NULL,
    embedded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, product_id, model),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX product_vectors_embedding_idx ON product_vectors USING hnsw (embedding vector_cosine_ops);

CREATE TABLE users (
    tenant_id text NOT NULL REFERENCES tenants (id),
    id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE interactions (
    id bigserial PRIMARY KEY,
    tenant_id text NOT NULL,
    user_id text NOT NULL,
    product_id text NOT NULL,
    type text NOT NULL CHECK (type IN ('purchase', 'like', 'dislike', 'view', 'rating')),
    value real,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
    CHECK (type <> 'rating' OR value BETWEEN 0.5 AND 5)
);
CREATE INDEX interactions_user_idx ON interactions (tenant_id, user_id, occurred_at DESC);
CREATE INDEX interactions_product_idx ON interactions (tenant_id, product_id);
