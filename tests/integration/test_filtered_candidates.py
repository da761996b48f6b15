"""Round trips 3 and 4 under filters, against PostgreSQL + pgvector: the most popular products that
pass a filter, and the nearest ones, whether many products pass or only a few."""
import uuid

import numpy as np
import pytest
from pgvector import Vector
from pgvector.asyncpg import register_vector

from services.api.app import query_settings
from services.api import store
from services.api.store import Filters, candidates, page
from shared import models
from shared.db import create_pool
from shared.settings import ApiSettings

# more than the index scan visits and the popularity walk looks up; half are Common
PRODUCTS = max(store.MAX_SCAN_TUPLES, 2 * store.RARE, store.POPULAR_WALK + store.RARE) + 1000
RARE_ONES = [PRODUCTS - 300, PRODUCTS - 200, PRODUCTS - 100]  # far down the popularity order
DIMENSION = 8


def genres(i: int) -> list[str]:
    """Head: one in ten of the products the popularity walk probes, then none up to where the walk
    gives up, then all the rest, more than `store.RARE` (the walk is tried, finds too few and gives
    way to the join)."""
    head = i < store.POPULAR_PROBE and i % 10 == 0 or i >= store.POPULAR_WALK + 500
    return ["Common"] * (i % 2 == 0) + ["Rare"] * (i in RARE_ONES) + ["Head"] * head


@pytest.fixture(scope="module")
async def catalogue(pool):
    """A tenant with PRODUCTS products: popularity falling with the number, in ties of 30 (ties go
    by id); every other one is Common, three far down the popularity order are Rare; random vectors."""
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
    passing = [pid for i, pid in enumerate(ids) if (genre is None or genre in genres(i)) and pid not in excluded]
    return sorted(passing, key=lambda pid: (-scores[pid], pid))[:count]


@pytest.mark.parametrize("genre", ["Common", "Rare", "Head", None])
async def test_the_most_popular_products_that_pass_a_filter_come_most_popular_first(pool, catalogue, genre):
    """For the blend (round trip 3) and the popularity continuation (round trip 4): half the
    products pass (Common: the popularity walk finds them), three far down the popularity order
    (Rare: the join), a few of the most popular and many far down (Head: the walk, then the join),
    or every one (no filter). Each time the same list as sorting every product that passes."""
    tenant, model, ids, scores, _ = catalogue
    excluded = [ids[0], ids[3], ids[RARE_ONES[0]]]
    async with pool.acquire() as conn:
        found = await candidates(conn, tenant, model, [], [], excluded, Filters(genre=genre), [], False, 200)
        rows, continuation = await page(conn, tenant, model, [], excluded, Filters(genre=genre), 5, 11, {})
    assert found.popular == most_popular(ids, scores, genre, excluded, 200)
    assert [pid for pid, _ in continuation] == most_popular(ids, scores, genre, excluded, 16)[5:]
    assert set(rows) == {pid for pid, _ in continuation}
    assert len(found.popular) == (2 if genre == "Rare" else 200)


def exact_nearest(query, ids, vectors, genre, count):
    units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    distance = {ids[i]: 1 - float(units[i] @ (query / np.linalg.norm(query))) for i in range(len(ids))
                if genre in genres(i)}
    return sorted(distance, key=lambda pid: (distance[pid], pid))[:count]


async def nearest(database_url, catalogue, genre, count, **session):
    """Round trip 3's nearest products for two queries, on a connection with the api's session
    settings (and `session`)."""
    tenant, model, _, _, _ = catalogue
    settings = ApiSettings(database_url=database_url, db_pool_min=1, db_pool_max=1)
    pool = await create_pool(settings, server_settings={**query_settings(settings), **session}, keep_session=True)
    try:
        async with pool.acquire() as conn:
            found = await candidates(conn, tenant, model, QUERIES, [count, count], [], Filters(genre=genre), [], False,
                                     0, DIMENSION)
    finally:
        await pool.close()
    return found.nearest


QUERIES = [np.random.default_rng(n).standard_normal(DIMENSION).astype(np.float32) for n in (1, 2)]


async def test_a_filter_few_products_pass_gets_all_of_them_nearest_first(database_url, catalogue):
    """Fewer than `store.RARE` products pass: they are compared exactly (no index scan that would
    visit `store.MAX_SCAN_TUPLES` vectors for three): all of them, nearest first."""
    _, _, ids, _, vectors = catalogue
    assert await nearest(database_url, catalogue, "Rare", 5) == [exact_nearest(q, ids, vectors, "Rare", 5)
                                                                 for q in QUERIES]


async def test_a_common_filter_fills_from_the_index_and_exactly_when_the_scan_gives_up(database_url, catalogue):
    """Half the products pass: the index scan fills the lists; where it gives up (here after 50
    vectors), the products that pass are compared exactly."""
    _, _, ids, _, vectors = catalogue
    for found in await nearest(database_url, catalogue, "Common", 10):
        assert len(found) == 10 and all("Common" in genres(ids.index(pid)) for pid in found)
    assert await nearest(database_url, catalogue, "Common", 10, **{"hnsw.max_scan_tuples": "50"}) == [
        exact_nearest(q, ids, vectors, "Common", 10) for q in QUERIES]
