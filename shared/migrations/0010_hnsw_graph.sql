-- Each model's HNSW index is rebuilt with a better graph: ef_construction 128 instead of 64
-- (shared/models.py, HNSW_M and HNSW_EF_CONSTRUCTION, which build every new model's index): a query
-- finds more of the exact 10 nearest at a given search width (EF_SEARCH; shared/models.py gives
-- the figures). The rebuild blocks writes to product_vectors while it
-- runs: about 40 s per 100,000 vectors of a model on 2 cores.
DO $$
DECLARE
    m record;
BEGIN
    FOR m IN SELECT name, dimension FROM embedding_models LOOP
        IF to_regclass(embedding_index_name(m.name)) IS NOT NULL THEN
            EXECUTE format('DROP INDEX %I', embedding_index_name(m.name));
            EXECUTE format('CREATE INDEX %I ON product_vectors USING hnsw ((embedding::vector(%s)) vector_cosine_ops)'
                           ' WITH (m = 16, ef_construction = 128) WHERE model = %L',
                           embedding_index_name(m.name), m.dimension, m.name);
        END IF;
    END LOOP;
END $$;
