"""Interactions in, the spike's routes, browse, similar, and the HNSW plan."""
import pytest

from services.api.app import query_settings
from services.api.store import Filters, explain_nearest
from shared.settings import ApiSettings

pytestmark = pytest.mark.e2e


async def test_unknown_products_are_422_naming_them_and_nothing_is_stored(demo_tenant, unique):
    known = demo_tenant.titles["Harvest Home"]
    status, body = await demo_tenant.post(demo_tenant.ingest_url, f"/v1/users/u-{unique}/interactions",
                                          [{"product_id": known, "type": "like"},
                                           {"product_id": "no-such-film", "type": "like"}])
    assert status == 422
    assert body["error"]["details"] == [{"field": "[1].product_id", "problem": "unknown product 'no-such-film'"}]
    status, _ = await demo_tenant.get(f"/v1/users/u-{unique}/interactions")
    assert status == 404  # not even the user was created
    status, body = await demo_tenant.post(demo_tenant.ingest_url, "/v1/orders",
                                          {"user_id": f"u-{unique}", "items": [{"product_id": "gone", "quantity": 1}]})
    assert status == 422 and body["error"]["details"][0]["field"] == "items[0].product_id"


async def test_interactions_validate_type_and_rating_value(demo_tenant, unique):
    film = demo_tenant.titles["Harvest Home"]
    for event, field in [({"product_id": film, "type": "love"}, "type"),
                         ({"product_id": film, "type": "rating", "value": 7}, "body")]:
        status, body = await demo_tenant.post(demo_tenant.ingest_url, f"/v1/users/u-{unique}/interactions", event)
        assert status == 422, body
        assert body["error"]["details"][0]["field"] == field


async def test_orders_and_event_ids_are_idempotent(demo_tenant, unique):
    films = [demo_tenant.titles["Relay"], demo_tenant.titles["The Piano Tuner"]]
    order = {"user_id": f"buyer-{unique}", "order_id": f"o-{unique}",
             "items": [{"product_id": films[0], "quantity": 2}, {"product_id": films[1]}]}
    status, body = await demo_tenant.post(demo_tenant.ingest_url, "/v1/orders", order)
    assert status == 201 and body["stored"] == 2
    status, body = await demo_tenant.post(demo_tenant.ingest_url, "/v1/orders", order)
    assert status == 201 and body["stored"] == 0
    rating = {"product_id": films[0], "type": "rating", "value": 4.5, "event_id": f"r-{unique}"}
    for expected in (1, 0):
        status, body = await demo_tenant.post(demo_tenant.ingest_url, f"/v1/users/buyer-{unique}/interactions", rating)
        assert status == 201 and body["stored"] == expected
    status, body = await demo_tenant.get(f"/v1/users/buyer-{unique}/interactions")
    assert sorted((e["type"], e["value"]) for e in body["items"]) == [("purchase", 1), ("purchase", 2), ("rating", 4.5)]


async def test_spike_routes_keep_their_shapes(demo_tenant):
    status, body = await demo_tenant.get("/api/ping")
    assert (status, body) == (200, {"message": "Pong!"})
    status, listed = await demo_tenant.get("/api/products")
    assert status == 200 and len(listed) == len(demo_tenant.movies)
    assert set(listed[0]) == {"id", "name", "description", "rating"}
    status, body = await demo_tenant.get("/api/products/recommendation", users_id="ada")
    assert status == 200 and len(body) == 10
    assert all(set(item) == {"product", "similarity"} and isinstance(item["similarity"], float) for item in body)
    assert set(body[0]["product"]) == {"id", "name", "description", "rating"}
    liked = [demo_tenant.titles["Wolves of the North"]]
    status, body = await demo_tenant.post(demo_tenant.api_url, "/api/products/recommendation", {"products": liked})
    assert status == 200 and len(body) == 10 and liked[0] not in [i["product"]["id"] for i in body]
    assert body[0]["product"]["name"] and isinstance(body[0]["product"]["rating"], float)
    status, body = await demo_tenant.get("/api/products/recommendation")
    assert status == 400 and body["error"]["details"][0]["field"] == "users_id"


async def test_similar_products_and_unknown_id(demo_tenant):
    film = demo_tenant.titles["Apollo Archives"]
    status, body = await demo_tenant.get(f"/v1/products/{film}/similar", limit=3)
    assert status == 200 and len(body["items"]) == 3
    assert film not in [i["product"]["id"] for i in body["items"]]
    assert any("Space" in i["product"]["genres"] for i in body["items"])
    assert body["items"][0]["reasons"][0]["product_id"] == film
    status, body = await demo_tenant.get("/v1/products/no-such-film/similar")
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_browse_searches_titles_and_pages(demo_tenant):
    status, body = await demo_tenant.get("/v1/products", query="the", limit=5)
    assert status == 200 and len(body["items"]) == 5
    first = [p["title"] for p in body["items"]]
    status, second = await demo_tenant.get("/v1/products", query="the", limit=5, cursor=body["next_cursor"])
    titles = first + [p["title"] for p in second["items"]]
    assert all("the" in t.lower() for t in titles) and len(set(titles)) == len(titles)
    assert titles == sorted(titles, key=str.lower)
    status, body = await demo_tenant.get("/v1/products", genre="Western", limit=100)
    assert len(body["items"]) == 12 and body["next_cursor"] is None


async def test_candidate_query_is_answered_from_the_hnsw_index(pool, demo_tenant):
    """The nearest-neighbour query can use the HNSW index (on this small table the planner
    would rather sort, so sequential scans and sorts are priced out; `make bench` checks it at 100,000)."""
    settings = ApiSettings()
    vector = await pool.fetchval("SELECT embedding FROM product_vectors WHERE tenant_id = $1 LIMIT 1", demo_tenant.id)
    async with pool.acquire() as conn, conn.transaction():
        for name, value in {**query_settings(settings), "enable_seqscan": "off", "enable_sort": "off"}.items():
            await conn.execute("SELECT set_config($1, $2, true)", name, value)
        plan = await explain_nearest(conn, demo_tenant.id, settings.model_name, vector.to_numpy(), 10,
                                     Filters(genre="Western"), dimension=384)
    index = await pool.fetchval("SELECT embedding_index_name($1)", settings.model_name)
    assert f"Index Scan using {index}" in plan, plan
