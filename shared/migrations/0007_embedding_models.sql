-- Several embedding models side by side, and a per-tenant switch between them.
--
-- product_vectors.embedding takes vectors of any dimension; each model has its own HNSW index,
-- a partial expression index on embedding::vector(D) WHERE model = '<name>' (queries order by the
-- same expression and filter on the model). `embedding_models` records each model's dimension
-- the first time a worker loads it; a name never changes dimension.
CREATE TABLE embedding_models (
    name text PRIMARY KEY,
    dimension integer NOT NULL CHECK (dimension > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The model a tenant's requests use (`active`; no row: the services' MODEL_NAME), and the model
-- `recommender reembed` is preparing (`pending`): workers embed every product write with both
-- until the switch, which sets active = pending in one UPDATE.
CREATE TABLE tenant_models (
    tenant_id text PRIMARY KEY REFERENCES tenants (id),
    active text NOT NULL,
    pending text,
    switched_at timestamptz NOT NULL DEFAULT now(),
    CHECK (pending IS DISTINCT FROM active)
);

-- The name of a model's HNSW index: identifiers stay short and safe whatever the model's name.
CREATE FUNCTION embedding_index_name(model text) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$ SELECT 'product_vectors_embedding_' || substr(md5(model), 1, 16) $$;

DROP INDEX product_vectors_embedding_idx;
ALTER TABLE product_vectors ALTER COLUMN embedding TYPE vector;
INSERT INTO embedding_models (name, dimension) VALUES ('all-MiniLM-L6-v2', 384);
DO $$ BEGIN
    EXECUTE format('CREATE INDEX %I ON product_vectors USING hnsw ((embedding::vector(384)) vector_cosine_ops)'
                   ' WHERE model = %L', embedding_index_name('all-MiniLM-L6-v2'), 'all-MiniLM-L6-v2');
END $$;
