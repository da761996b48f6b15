"""The request path against PostgreSQL: a user's history as ingest stored it, and a stored model
that names a product deleted since."""
from datetime import datetime, timedelta, timezone

import numpy as np

from services.api.neighbours import CollaborativeModels
from services.api.recommend import Request, recommend
from services.api.store import Filters, Store, history
from services.ingest import interactions
from shared import neighbours
from shared.db import create_pool
from shared.interactions import TYPES
from shared.neighbours import CollaborativeModel
from shared.schemas import InteractionIn


async def test_of_two_events_posted_together_for_one_product_the_later_one_decides(pool, unique):
    """One POST stamps its events with one instant; the event given later must win, as in
    `History.weights` (a like then a dislike in one request is a dislike)."""
    tenant = f"ties-{unique}"
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO tenants (id) VALUES ($1)", tenant)
        await interactions.store(conn, tenant, "u", [InteractionIn(product_id="a", type="like"),
                                                     InteractionIn(product_id="a", type="dislike"),
                                                     InteractionIn(product_id="b", type="dislike"),
                                                     InteractionIn(product_id="b", type="like")])
        weights = (await history(conn, tenant, "u")).history.weights().as_dict()
    assert weights["a"] < 0 < weights["b"]


async def test_the_history_comes_back_as_stored_oldest_first_with_live_popularity_before_training(pool, unique):
    """Round trip 1 packs each column of events into one value; decoded, it is the events as
    ingest stored them: ids, types, stars (NaN where none) and instants."""
    tenant, start = f"columns-{unique}", datetime(2024, 5, 1, tzinfo=timezone.utc)
    events = [("a", "like", None), ("b", "rating", 4.5), ("c", "view", None), ("a", "dislike", None),
              ("d", "purchase", 2.0), ("b", "rating", 1.5)]
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO tenants (id) VALUES ($1)", tenant)
        await interactions.store(conn, tenant, "u", [
            InteractionIn(product_id=pid, type=kind, value=value, occurred_at=start + timedelta(hours=i))
            for i, (pid, kind, value) in enumerate(events)])
        await interactions.store(conn, tenant, "other", [InteractionIn(product_id="c", type="like")])
        got = await history(conn, tenant, "u")
        nobody = await history(conn, tenant, "nobody")
    assert got.history.product_ids.tolist() == [pid for pid, _, _ in events]
    assert [TYPES[code] for code in got.history.types] == [kind for _, kind, _ in events]
    np.testing.assert_array_equal(got.history.stars, [np.nan, 4.5, np.nan, np.nan, 2.0, 1.5])
    assert got.history.times_s.tolist() == [(start + timedelta(hours=i)).timestamp() for i in range(len(events))]
    assert got.run is None and len(nobody.history) == 0
    assert got.live_popularity == nobody.live_popularity  # the tenant's, whoever asks
    assert set(got.live_popularity) == {"a", "b", "c", "d"} and max(got.live_popularity.values()) == 1.0


async def test_a_product_deleted_after_training_never_reaches_a_page(pool, unique):
    """The stored model still names a product deleted since its training run: the page's own
    query finds no live row for it, and the page fills from the next candidates."""
    tenant = f"gone-{unique}"
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO tenants (id) VALUES ($1)", tenant)
        await conn.executemany(
            "INSERT INTO products (tenant_id, id, title, description, genres, year, content_hash, version)"
            " VALUES ($1, $2, $2, '', '{}', 2000, 'h', 1)", [(tenant, pid) for pid in "abcde"])
        await interactions.store(conn, tenant, "u", [InteractionIn(product_id="a", type="like")])
        await neighbours.save(conn, tenant, CollaborativeModel.of_pairs(
            1, {"similar": {"a": [("b", 0.9), ("c", 0.5), ("d", 0.3), ("e", 0.1)]}}, {"b": 1.0, "e": 0.5}))
        await conn.execute("UPDATE products SET deleted = true WHERE tenant_id = $1 AND id = 'b'", tenant)
        store = Store(conn, CollaborativeModels(4))
        for strategy in ("collaborative", "hybrid"):
            first = await recommend(store, Request(tenant, "m", strategy, Filters(), 2, 0, 40), "u")
            second = await recommend(store, Request(tenant, "m", strategy, Filters(), 2, 2, 40), "u")
            shown = [c.product_id for c, _ in first.items + second.items]
            assert shown == ["c", "d", "e"], strategy  # b is gone, a is the user's own


async def test_the_api_pool_hands_a_connection_back_without_the_reset_round_trip(settings):
    """`keep_session` (the api's pool): release skips asyncpg's reset statement, so a session
    setting survives it; the default pool resets it."""
    one = settings.model_copy(update={"db_pool_min": 1, "db_pool_max": 1})
    for keep, expected in ((True, "kept"), (False, "")):
        pool = await create_pool(one, keep_session=keep)
        try:
            async with pool.acquire() as conn:
                await conn.execute("SET application_name = 'kept'")
            async with pool.acquire() as conn:
                assert await conn.fetchval("SHOW application_name") == expected
        finally:
            await pool.close()
