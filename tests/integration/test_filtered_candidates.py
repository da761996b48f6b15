"""Round trips 3 and 4 under filters, against PostgreSQL + pgvector: the most popular products that
pass a filter, and the nearest ones, whether many products pass or only a few."""
import uuid

import numpy as np
import pytest
from pgvector import Vector
from pgvector.asyncpg import register_vector

from services.api.app import query_settings
from services.api.store import MAX_SCAN_TUPLES, POPULAR_WALK, Filters, candidates, page
from shared import models
from shared.db import create_pool
from shared.settings import ApiSettings

PRODUCTS = max(POPULAR_WALK, MAX_SCAN_TUPLES) + 1000  # more than the walk and the index scan reach
RARE = [PRODUCTS - 300, PRODUCTS - 200, PRODUCTS - 100]  # far down the popularity order
DIMENSION = 8


def genres(i: int) -> list[str]:
    return ["Common"] * (i % 3 == 0) + ["Rare"] * (i in RARE)


@pytest.fixture(scope="module")
async def catalogue(pool):
    """A tenant with PRODUCTS products: popularity falling with the number, in ties of 30 (ties go
    by id); every third is Common, three far down the popularity order are Rare; random vectors."""
    tenant = model = f"filters-{uuid.uuid4().hex[:10]}"
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((PRODUCTS, DIMENSION)).astype(np.float32)
    ids = [f"p{i:05d}" for i in range(PRODUCTS)]
    scores = {pid: round(1 - i / PRODUCTS, 2) for i, pid in enumerate(ids)}
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO tenants (id) VALUES ($1)", tenant)
        await conn.copy_records_to_table(
            "products", columns=["tenant_id", "id", "title", "description", "genres", "year", "content_hash", "version"],
            records=[(tenant, pid, pid, "", genres(i), 2000, "h", 1) for i, pid in enumerate(ids)])
        await conn.copy_records_to_table("product_popularity", columns=["tenant_id", "product_id", "score"],
                                         records=[(tenant, pid, score) for pid, score in scores.items()])
        await register_vector(conn)
        await conn.copy_records_to_table("product_vectors", columns=["tenant_id", "product_id", "model", "content_hash",
                                                                     "embedding"],
                                         records=[(tenant, pid, model, "h", Vector(v)) for pid, v in zip(ids, vectors)])
        await models.register(conn, model, DIMENSION)  # its index, built on the vectors at once
    return tenant, model, ids, scores, vectors


def most_popular(ids, scores, genre, excluded, count):
    passing = [pid for i, pid in enumerate(ids) if genre in genres(i) and pid not in excluded]
    return sorted(passing, key=lambda pid: (-scores[pid], pid))[:count]


@pytest.mark.parametrize("genre", ["Common", "Rare"])
async def test_the_most_popular_products_that_pass_a_filter_come_most_popular_first(pool, catalogue, genre):
    """Common: found within the walk in popularity order; Rare: none of its products is among the
    POPULAR_WALK most popular, so the products that pass are asked for instead. Either way, the
    same list as sorting every product that passes."""
    tenant, model, ids, scores, _ = catalogue
    excluded = [ids[0], ids[3], ids[RARE[0]]]
    async with pool.acquire() as conn:
        found = await candidates(conn, tenant, model, [], [], excluded, Filters(genre=genre), [], False, 200)
        rows, continuation = await page(conn, tenant, model, [], excluded, Filters(genre=genre), 5, 11, {})
    assert found.popular == most_popular(ids, scores, genre, excluded, 200)
    assert [pid for pid, _ in continuation] == most_popular(ids, scores, genre, excluded, 16)[5:]
    assert set(rows) == {pid for pid, _ in continuation}
    assert len(found.popular) == (200 if genre == "Common" else 2)


async def test_a_filter_few_products_pass_gets_all_of_them_nearest_first(database_url, catalogue):
    """With the api's session settings the index scan gives up after `hnsw.max_scan_tuples` when a
    filter rejects nearly everything; the exact query then answers: every product that passes, in
    order of distance. A common filter still fills its lists from the index."""
    tenant, model, ids, _, vectors = catalogue
    settings = ApiSettings(database_url=database_url, db_pool_min=1, db_pool_max=1)
    api_pool = await create_pool(settings, server_settings=query_settings(settings), keep_session=True)
    queries = [np.random.default_rng(n).standard_normal(DIMENSION).astype(np.float32) for n in (1, 2)]
    try:
        async with api_pool.acquire() as conn:
            rare = await candidates(conn, tenant, model, queries, [5, 5], [], Filters(genre="Rare"), [], False, 0,
                                    DIMENSION)
            common = await candidates(conn, tenant, model, queries, [10, 10], [], Filters(genre="Common"), [], False, 0,
                                      DIMENSION)
    finally:
        await api_pool.close()
    units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for query, nearest in zip(queries, rare.nearest):
        distance = {ids[i]: 1 - float(units[i] @ (query / np.linalg.norm(query))) for i in RARE}
        assert nearest == sorted(distance, key=distance.get)
    for nearest in common.nearest:
        assert len(nearest) == 10 and all("Common" in genres(ids.index(pid)) for pid in nearest)
