-- Messages the embedder gave up on (unparseable, invalid, or failing repeatedly while the database
-- was up), kept until a person requeues or drops them: `recommender dead-letters ...`.
-- A product whose current version has a dead letter shows `embedding_status = 'failed'`.
CREATE TABLE dead_letters (
    id bigserial PRIMARY KEY,
    message_id text NOT NULL UNIQUE,
    tenant_id text,
    product_id text,
    version bigint,
    body bytea NOT NULL,
    reason text NOT NULL,
    attempts integer NOT NULL,
    dead_lettered_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_product_idx ON dead_letters (tenant_id, product_id);

-- How many times a product's vector was written: a redelivered message must not embed it again.
ALTER TABLE product_vectors ADD COLUMN writes integer NOT NULL DEFAULT 1;
