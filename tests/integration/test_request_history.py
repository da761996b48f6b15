"""The request path's first round trip against PostgreSQL: a user's history as ingest stored it."""
from services.api.store import history
from services.ingest import interactions
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
