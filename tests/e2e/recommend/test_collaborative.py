"""The collaborative model and the hybrid on the real stack: trained by the trainer job from
interactions, applied to the user's live history, blended with content similarity."""
import asyncio
import uuid

import aiohttp
import pytest
from services.trainer.job import train
from tests.e2e.recommend.conftest import tenant_services
from tools.demo import demo_data

WESTERN, CARTOON, ROMANCE = "movie-016", "movie-028", "movie-040"
SPACE = ["movie-001", "movie-002", "movie-003", "movie-004", "movie-005"]


class Client:
    def __init__(self, tenant_id: str, ingest_url: str, api_url: str, session: aiohttp.ClientSession, pool):
        self.tenant_id, self.ingest_url, self.api_url, self.session = tenant_id, ingest_url, api_url, session
        self.pool = pool  # the trainer's database

    async def likes(self, user: str, product_ids: list[str]) -> None:
        events = [{"product_id": pid, "type": "like"} for pid in product_ids]
        async with self.session.post(f"{self.ingest_url}/v1/users/{user}/interactions", json=events) as response:
            assert response.status == 201, await response.text()

    async def recommend(self, user: str, **params) -> list[dict]:
        async with self.session.get(f"{self.api_url}/v1/users/{user}/recommendations", params=params) as response:
            body = await response.json()
            assert response.status == 200, body
            return body["items"]

    async def wait_ready(self, product_ids: list[str], timeout_s: float = 180) -> None:
        for _ in range(int(timeout_s * 2)):
            statuses = []
            for pid in product_ids:
                async with self.session.get(f"{self.api_url}/v1/products/{pid}") as response:
                    statuses.append((await response.json()).get("embedding_status") if response.status == 200 else None)
            if all(status == "ready" for status in statuses):
                return
            await asyncio.sleep(0.5)
        raise AssertionError(f"products not embedded: {statuses}")


@pytest.fixture(scope="module")
async def client(stack, pool, database_url, amqp_url, amqp_prefix):
    async with tenant_services(pool, database_url, amqp_url, amqp_prefix, "collab") as (keys, ingest_url, api_url):
        async with aiohttp.ClientSession(headers=keys.headers("write")) as session:
            tenant_id = keys.tenant
            client = Client(tenant_id, ingest_url, api_url, session, pool)
            movies = demo_data()["movies"]
            async with session.post(f"{client.ingest_url}/v1/products", json=movies) as response:
                assert response.status == 202
            await client.wait_ready([m["id"] for m in movies])
            for n in range(6):  # a taste no description explains: westerns, cartoons and romance together
                await client.likes(f"fan-{n}", [WESTERN, CARTOON, ROMANCE])
            await train(pool, tenant_id)
            yield client


async def test_people_who_liked_the_same_things_decide_the_top(client):
    await client.likes("newcomer", [WESTERN, CARTOON])
    [top] = await client.recommend("newcomer", strategy="collaborative", limit=1)
    assert top["product"]["id"] == ROMANCE
    assert top["reasons"][0]["type"] in ("people_also_liked", "people_watched_next")
    assert top["reasons"][0]["product_id"] in (WESTERN, CARTOON)
    hybrid = await client.recommend("newcomer", limit=3)  # the default strategy
    assert ROMANCE in [item["product"]["id"] for item in hybrid]


async def test_a_new_like_changes_the_very_next_response_without_retraining(client):
    await client.likes("late", [SPACE[0]])
    before = {item["product"]["id"]: item for item in await client.recommend("late", limit=10)}
    assert all(before.get(pid, {"reasons": [{"type": "popular"}]})["reasons"][0]["type"] == "popular"
               for pid in (CARTOON, ROMANCE))
    await client.likes("late", [WESTERN])
    after = await client.recommend("late", limit=10)
    assert WESTERN not in [item["product"]["id"] for item in after]
    assert {item["product"]["id"] for item in after[:2]} == {CARTOON, ROMANCE}  # what the western's fans liked
    assert all(item["reasons"][0]["product_id"] == WESTERN for item in after[:2])


async def test_a_fresh_product_reaches_a_fan_through_content_before_anyone_touched_it(client):
    await client.likes("astronomer", SPACE)
    fresh = {"id": f"fresh-{uuid.uuid4().hex[:6]}", "title": "Beyond the Kuiper Belt",
             "description": "A science fiction and outer space film. A lone astronaut pilots a salvage ship past "
                            "derelict space stations towards a signal from a distant star.",
             "genres": ["Science Fiction", "Space"], "year": 2026}
    async with client.session.post(f"{client.ingest_url}/v1/products", json=fresh) as response:
        assert response.status == 202
    await client.wait_ready([fresh["id"]])
    items = await client.recommend("astronomer", limit=10)
    found = [item for item in items if item["product"]["id"] == fresh["id"]]
    assert found, [item["product"]["title"] for item in items]
    assert found[0]["reasons"][0] == {"type": "similar_to", "product_id": found[0]["reasons"][0]["product_id"],
                                      "title": found[0]["reasons"][0]["title"]}
    assert found[0]["reasons"][0]["product_id"] in SPACE


async def test_a_user_with_no_history_gets_popular_products(client):
    items = await client.recommend(f"nobody-{uuid.uuid4().hex[:6]}", limit=5)
    assert len(items) == 5 and {item["reasons"][0]["type"] for item in items} == {"popular"}
    assert {WESTERN, CARTOON, ROMANCE} <= {item["product"]["id"] for item in items}


async def test_diversity_and_weights_reshape_the_list_and_bad_values_are_400(client):
    await client.likes("explorer", SPACE[:3] + [WESTERN])
    plain = [item["product"]["id"] for item in await client.recommend("explorer", limit=10)]
    diverse = [item["product"]["id"] for item in await client.recommend("explorer", limit=10, diversity="0.9")]
    assert len(diverse) == 10 and set(diverse).isdisjoint(SPACE[:3] + [WESTERN])
    assert diverse != plain
    content_only = await client.recommend("explorer", limit=3, weights="collaborative:0,popularity:0,next:0")
    assert all(item["reasons"][0]["type"] == "similar_to" for item in content_only)
    for name, value in (("diversity", "2"), ("diversity", "lots"), ("weights", "content:x"), ("weights", "magic:1")):
        async with client.session.get(f"{client.api_url}/v1/users/explorer/recommendations",
                                      params={name: value}) as response:
            body = await response.json()
            assert response.status == 400 and body["error"]["details"][0]["field"] == name


async def test_a_new_training_run_reaches_the_very_next_request(client):
    """The api process keeps the tenant's model in memory; a newer run replaces it at once. (Last in
    the module: it retrains the shared tenant.)"""
    newer = "movie-042"
    await client.likes("follower", [SPACE[4]])
    before = await client.recommend("follower", strategy="collaborative", limit=3)
    assert all(item["reasons"][0]["type"] == "popular" for item in before)  # nobody else liked SPACE[4] yet
    for n in range(6):
        await client.likes(f"space-fan-{n}", [SPACE[4], newer])
    await train(client.pool, client.tenant_id)
    [top] = await client.recommend("follower", strategy="collaborative", limit=1)
    assert top["product"]["id"] == newer and top["reasons"][0]["product_id"] == SPACE[4]
