"""Versioned writes on the real PostgreSQL: the latest accepted write wins in any processing order."""
import json

import numpy as np
import pytest

from services.embedder.store import PgStore
from shared import catalog, models
from shared.errors import RetryableError
from shared.schemas import ProductIn, ProductMessage, content_hash

MODEL = "test-model"
MODELS = {"default": [MODEL]}


def upsert(pid: str, version: int, description: str) -> ProductMessage:
    product = ProductIn(id=pid, title="T", description=description)
    return ProductMessage(type="product.upsert", tenant_id="default", product_id=pid, version=version, product=product)


def vector(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=384).astype(np.float32)
    return v / np.linalg.norm(v)


async def row(pool, pid):
    return await pool.fetchrow(
        "SELECT p.description, p.version, p.deleted, v.content_hash AS vector_hash FROM products p"
        " LEFT JOIN product_vectors v ON v.tenant_id = p.tenant_id AND v.product_id = p.id"
        " WHERE p.tenant_id = 'default' AND p.id = $1",
        pid,
    )


async def test_an_older_upsert_after_a_delete_does_not_bring_the_product_back(pool, unique):
    store = PgStore(pool, MODEL)
    pid = f"cat-{unique}"
    await store.apply([upsert(pid, 1, "first")], {("default", pid, MODEL): vector(1)}, MODELS)
    await store.apply([ProductMessage(type="product.delete", tenant_id="default", product_id=pid, version=3)], {}, MODELS)
    await store.apply([upsert(pid, 2, "stale")], {("default", pid, MODEL): vector(2)}, MODELS)
    stored = await row(pool, pid)
    assert stored["deleted"] and stored["version"] == 3 and stored["vector_hash"] is None


async def test_a_newer_upsert_beats_an_older_one_processed_later(pool, unique):
    store = PgStore(pool, MODEL)
    pid = f"cat-{unique}"
    await store.apply([upsert(pid, 5, "newest")], {("default", pid, MODEL): vector(1)}, MODELS)
    await store.apply([upsert(pid, 4, "older")], {("default", pid, MODEL): vector(2)}, MODELS)
    stored = await row(pool, pid)
    assert stored["description"] == "newest" and stored["version"] == 5


async def test_recreating_after_a_delete_with_a_newer_version_works(pool, unique):
    store = PgStore(pool, MODEL)
    pid = f"cat-{unique}"
    await store.apply([ProductMessage(type="product.delete", tenant_id="default", product_id=pid, version=1)], {}, MODELS)
    await store.apply([upsert(pid, 2, "back")], {("default", pid, MODEL): vector(1)}, MODELS)
    stored = await row(pool, pid)
    assert not stored["deleted"] and stored["description"] == "back" and stored["vector_hash"]


async def test_pending_rows_from_ingest_and_the_workers_write_agree(pool, unique):
    pid = f"cat-{unique}"
    message = upsert(pid, 7, "same")
    async with pool.acquire() as conn:
        await catalog.upsert_products(conn, "default", [(message.product, 7)])
    assert (await row(pool, pid))["vector_hash"] is None  # pending
    await PgStore(pool, MODEL).apply([message], {("default", pid, MODEL): vector(3)}, MODELS)
    assert (await row(pool, pid))["vector_hash"] is not None  # ready


async def test_a_model_name_keeps_its_dimension_and_gets_its_own_index(pool, unique):
    name = f"model-{unique}"
    async with pool.acquire() as conn:
        await models.register(conn, name, 384)
        await models.register(conn, name, 384)  # every worker start registers again: fine
        with pytest.raises(models.ModelMismatch, match="makes 768-d vectors but was registered with 384"):
            await models.register(conn, name, 768)
        definition = await conn.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = embedding_index_name($1)",
                                         name)
    assert "hnsw" in definition and "vector(384)" in definition and f"'{name}'" in definition


async def test_migrations_are_a_no_op_when_run_again(database_url):
    from shared.migrate import migrate

    assert await migrate(database_url) == []


async def test_one_batch_applies_upserts_and_deletes_of_two_tenants_and_skips_what_is_stale(pool, unique):
    store = PgStore(pool, MODEL)
    other = f"cat-tenant-{unique}"
    await pool.execute("INSERT INTO tenants (id) VALUES ($1)", other)
    old, gone, new = f"old-{unique}", f"gone-{unique}", f"new-{unique}"
    await store.apply([upsert(old, 9, "kept"), upsert(gone, 1, "soon deleted")],
                      {("default", old, MODEL): vector(1), ("default", gone, MODEL): vector(2)}, MODELS)
    product = ProductIn(id=new, title="Other", description="theirs", genres=["Drama", "War"], year=1999,
                        metadata={"director": "x"})
    batch = [ProductMessage(type="product.delete", tenant_id="default", product_id=gone, version=2),
             upsert(old, 8, "stale"),
             ProductMessage(type="product.upsert", tenant_id=other, product_id=new, version=1, product=product)]
    await store.apply(batch, {("default", old, MODEL): vector(3), (other, new, MODEL): vector(4)},
                      {"default": [MODEL], other: [MODEL]})
    assert (await row(pool, old))["description"] == "kept"  # version 8 < 9: neither text nor vector changed
    assert (await row(pool, gone))["deleted"] and (await row(pool, gone))["vector_hash"] is None
    stored = await pool.fetchrow("SELECT p.genres, p.year, p.metadata, v.content_hash FROM products p"
                                 " JOIN product_vectors v ON v.tenant_id = p.tenant_id AND v.product_id = p.id"
                                 " WHERE p.tenant_id = $1 AND p.id = $2", other, new)
    assert stored["genres"] == ["Drama", "War"] and stored["year"] == 1999
    assert json.loads(stored["metadata"]) == {"director": "x"}
    assert stored["content_hash"] == content_hash("Other", "theirs")


async def test_a_vector_that_changed_since_the_batch_was_read_makes_the_batch_retry(pool, unique):
    store = PgStore(pool, MODEL)
    pid = f"cat-{unique}"
    await store.apply([upsert(pid, 1, "text")], {("default", pid, MODEL): vector(1)}, MODELS)
    async with pool.acquire() as conn:  # another worker stored a vector of other text meanwhile
        await catalog.store_vector(conn, "default", pid, MODEL, content_hash("T", "other text"), vector(2))
    with pytest.raises(RetryableError, match="changed concurrently"):
        await store.apply([upsert(pid, 2, "text")], {}, MODELS)  # read as current: no vector computed
    assert (await row(pool, pid))["version"] == 1  # rolled back
