"""Personal recommendations on real PostgreSQL + pgvector with the real model's embeddings."""
import aiohttp
import pytest

from tests.e2e.recommend.conftest import Tenant, tenant_services
from tools.demo import demo_data

pytestmark = pytest.mark.e2e


def ids(body: dict) -> list[str]:
    return [item["product"]["id"] for item in body["items"]]


async def history_ids(tenant, user_id: str) -> set[str]:
    status, body = await tenant.get(f"/v1/users/{user_id}/interactions")
    assert status == 200
    return {event["product_id"] for event in body["items"]}


async def test_space_fan_gets_space_films_first_with_reasons(demo_tenant):
    status, body = await demo_tenant.get("/v1/users/ada/recommendations", limit=5)
    assert status == 200
    assert len(body["items"]) == 5
    for item in body["items"][:3]:
        assert "Space" in item["product"]["genres"], item["product"]["title"]
        [reason] = item["reasons"]
        assert reason["type"] == "similar_to" and reason["product_id"] in await history_ids(demo_tenant, "ada")


async def test_every_interacted_product_and_exclude_are_left_out(demo_tenant):
    history = await history_ids(demo_tenant, "wyatt")
    assert len(history) >= 6
    status, first = await demo_tenant.get("/v1/users/wyatt/recommendations", limit=5)
    excluded = ids(first)[:2]
    status, body = await demo_tenant.get("/v1/users/wyatt/recommendations", limit=100, exclude=",".join(excluded))
    assert status == 200
    returned = ids(body)
    total_products = len(demo_tenant.movies)
    assert len(returned) == min(100, total_products - len(history) - 2)
    assert not (set(returned) & (history | set(excluded)))
    assert len(set(returned)) == len(returned)


@pytest.mark.parametrize("params, genre, share", [
    ({"genre": "Western"}, "Western", 12),
    ({"genre": "Documentary", "year_from": 2015}, "Documentary", 6),
])
async def test_exactly_limit_under_selective_filters(demo_tenant, params, genre, share):
    """ada likes space films; the filter matches a small share of the catalogue, still `limit` come back."""
    limit = share - 1
    status, body = await demo_tenant.get("/v1/users/ada/recommendations", limit=limit, **params)
    assert status == 200
    assert len(body["items"]) == limit
    for item in body["items"]:
        assert genre in item["product"]["genres"]
        assert item["product"]["year"] >= params.get("year_from", 0)


async def test_dislikes_move_similar_products_down(demo_tenant):
    liked = [demo_tenant.titles["Deep Field"]]
    status, before = await demo_tenant.post(demo_tenant.api_url, "/v1/recommendations", {"liked": liked, "limit": 30})
    assert status == 200
    disliked = ids(before)[0]
    status, neighbours = await demo_tenant.get(f"/v1/products/{disliked}/similar", limit=4)
    close = [pid for pid in ids(neighbours) if pid not in liked][:3]
    status, after = await demo_tenant.post(demo_tenant.api_url, "/v1/recommendations",
                                           {"liked": liked, "disliked": [disliked], "limit": 30})
    assert disliked not in ids(after)

    def mean_rank(body):
        ranking = ids(body)
        return sum(ranking.index(pid) if pid in ranking else len(ranking) for pid in close) / len(close)

    assert mean_rank(after) > mean_rank(before) + 1


async def test_two_interests_both_reach_the_top_ten(demo_tenant):
    """wyatt likes westerns and cartoons: both show up, not a blurred average of the two."""
    status, body = await demo_tenant.get("/v1/users/wyatt/recommendations", limit=10)
    assert status == 200
    genres = [item["product"]["genres"] for item in body["items"]]
    assert sum("Western" in g for g in genres) >= 2
    assert sum("Animation" in g for g in genres) >= 2


async def test_cold_start_gets_popular_products(pool, database_url, amqp_url, amqp_prefix, unique):
    # Its own tenant: making one film the most popular would change every later test's rankings
    # in the session's demo tenant. Popularity needs products, not vectors: no waiting to embed.
    movies = demo_data()["movies"][:15]
    favourite = movies[7]["id"]
    async with tenant_services(pool, database_url, amqp_url, amqp_prefix, "cold") as (keys, ingest, api):
        async with aiohttp.ClientSession() as session:
            tenant = Tenant(keys.tenant, keys, ingest, api, session, {}, {})
            status, _ = await tenant.post(ingest, "/v1/products", [
                {key: m[key] for key in ("id", "title", "description", "genres", "year")} for m in movies])
            assert status == 202
            for fan in range(4):
                status, _ = await tenant.post(ingest, f"/v1/users/fan-{fan}/interactions",
                                              [{"product_id": favourite, "type": "like"},
                                               {"product_id": favourite, "type": "purchase"}])
                assert status == 201
            status, body = await tenant.get("/v1/users/nobody/recommendations", limit=10)
    assert status == 200
    assert len(body["items"]) == 10
    assert ids(body)[0] == favourite
    assert all(item["reasons"] == [{"type": "popular"}] for item in body["items"])


async def test_cursor_pages_are_disjoint_and_skip_nothing(demo_tenant):
    status, whole = await demo_tenant.get("/v1/users/marlowe/recommendations", limit=15)
    pages, cursor = [], None
    for _ in range(3):
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        status, body = await demo_tenant.get("/v1/users/marlowe/recommendations", **params)
        assert status == 200
        pages.append(ids(body))
        cursor = body["next_cursor"]
        assert cursor
    assert pages[0] + pages[1] + pages[2] == ids(whole)


async def test_cursor_pages_continue_past_the_ranked_part(demo_tenant):
    """Paging through the whole catalogue gives every eligible product exactly once, then ends."""
    history = await history_ids(demo_tenant, "rosa")
    seen, cursor = [], None
    for _ in range(len(demo_tenant.movies)):  # 40 a page: far fewer pages than products, or it never ends
        params = {"limit": 40, **({"cursor": cursor} if cursor else {})}
        status, body = await demo_tenant.get("/v1/users/rosa/recommendations", **params)
        seen += ids(body)
        cursor = body["next_cursor"]
        if cursor is None:
            break
    else:
        raise AssertionError(f"the cursor never ended after {len(seen)} items")
    assert len(seen) == len(set(seen)) == len(demo_tenant.movies) - len(history)


async def test_a_like_counts_in_the_very_next_request(demo_tenant, unique):
    user = f"quick-{unique}"
    space = demo_tenant.titles["Signal from Proxima"]
    status, _ = await demo_tenant.post(demo_tenant.ingest_url, f"/v1/users/{user}/interactions",
                                       {"product_id": space, "type": "like"})
    assert status == 201
    status, body = await demo_tenant.get(f"/v1/users/{user}/recommendations", limit=3)
    assert space not in ids(body)
    assert body["items"][0]["reasons"][0] == {"type": "similar_to", "product_id": space,
                                              "title": "Signal from Proxima"}


@pytest.mark.parametrize("strategy", ["content", "spike", "popular"])
async def test_each_strategy_fills_the_list(demo_tenant, strategy):
    status, body = await demo_tenant.get("/v1/users/ada/recommendations", limit=12, strategy=strategy)
    assert status == 200 and body["strategy"] == strategy
    assert len(body["items"]) == 12
    assert not set(ids(body)) & await history_ids(demo_tenant, "ada")


@pytest.mark.parametrize("params, field", [
    ({"limit": 0}, "limit"),
    ({"limit": 101}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"genre": "<script>"}, "genre"),
    ({"year_from": "1990x"}, "year_from"),
    ({"strategy": "magic"}, "strategy"),
    ({"exclude": "ok,bad id"}, "exclude"),
])
async def test_bad_parameters_are_400_naming_them(demo_tenant, params, field):
    status, body = await demo_tenant.get("/v1/users/ada/recommendations", **params)
    assert status == 400
    assert body["error"]["details"][0]["field"] == field


async def test_cursor_from_another_request_is_refused(demo_tenant):
    status, body = await demo_tenant.get("/v1/users/ada/recommendations", limit=5)
    status, body = await demo_tenant.get("/v1/users/wyatt/recommendations", limit=5, cursor=body["next_cursor"])
    assert status == 400 and body["error"]["details"][0]["field"] == "cursor"
