-- Each product's popularity joins the stored collaborative model (shared/neighbours.py), so an api
-- process holds it in memory with the neighbour tables: a request no longer looks up the popularity
-- of every candidate, nor the most popular products, in product_popularity (which stays, for the
-- popularity continuation and the popular strategy's filtered pages). Stored models lack it: they
-- go, and the trainer trains every tenant without a stored model on its next check.
DELETE FROM collaborative_models;
ALTER TABLE collaborative_models ADD COLUMN popularity bytea NOT NULL;  -- float32 little-endian per product code
