-- The collaborative model in the shape the api applies it (shared/neighbours.py): one row per
-- tenant holding both neighbour tables as packed arrays over one product vocabulary. An api
-- process loads it once per training run; item_neighbors (a row per product, which every request
-- had to read and decode) goes. The trainer trains every tenant without a stored model on its next
-- check, so existing tenants get theirs without waiting for new interactions.
CREATE TABLE collaborative_models (
    tenant_id text PRIMARY KEY,
    run_id bigint NOT NULL,               -- training_runs.id of the run that stored it
    product_ids text[] NOT NULL,          -- product code -> product id
    width integer NOT NULL,               -- neighbours per row
    similar_rows bytea NOT NULL,          -- int32 little-endian: codes of the products with a row, ascending
    similar_neighbours bytea NOT NULL,    -- int32 (rows x width), strongest first, -1 padding
    similar_weights bytea NOT NULL,       -- float32 (rows x width)
    next_rows bytea NOT NULL,
    next_neighbours bytea NOT NULL,
    next_weights bytea NOT NULL
);

DROP TABLE item_neighbors;
