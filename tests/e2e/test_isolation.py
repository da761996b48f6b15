"""Tenant isolation through every endpoint of ingest and api, on the running stack.

Tenants A and B both have a product `p1` (different texts) and a user `u1` (different histories);
B also has products and users A has never heard of. Every response to A's keys is checked for
B's marker word and B-only ids; what belongs to B answers exactly as what does not exist at all.

Endpoints covered (ENDPOINTS below; a test fails if a route is added without being listed):
ingest: POST /v1/products, PUT /v1/products/{id}, DELETE /v1/products/{id},
        POST /v1/users/{id}/interactions, POST /v1/orders;
api:    GET /v1/products (browse, search, cursor), GET /v1/products/{id}, GET /v1/products/{id}/similar,
        GET /v1/genres, GET /v1/users, GET /v1/users/{id}/interactions,
        GET /v1/users/{id}/recommendations (and its cursor), POST /v1/recommendations,
        GET /api/ping, GET /api/products, GET|POST /api/products/recommendation.
"""
import asyncio
import json
import uuid

import aiohttp
import pytest

from services.api.app import create_app as create_api
from services.ingest.app import create_app as create_ingest
from shared.settings import ApiSettings, IngestSettings
from tests.conftest import new_tenant

pytestmark = pytest.mark.e2e

MARK = "Zanzibarite"  # in every text of B, nowhere in A's
ENDPOINTS = {
    "ingest": {("POST", "/v1/products"), ("PUT", "/v1/products/{product_id}"),
               ("DELETE", "/v1/products/{product_id}"), ("POST", "/v1/users/{user_id}/interactions"),
               ("POST", "/v1/orders")},
    "api": {("GET", "/v1/products"), ("GET", "/v1/products/{product_id}"), ("GET", "/v1/products/{product_id}/similar"),
            ("GET", "/v1/genres"), ("GET", "/v1/users"), ("GET", "/v1/users/{user_id}/interactions"),
            ("GET", "/v1/users/{user_id}/recommendations"), ("POST", "/v1/recommendations"),
            ("GET", "/api/ping"), ("GET", "/api/products"), ("GET", "/api/products/recommendation"),
            ("POST", "/api/products/recommendation")},
}
A_PRODUCTS = [
    {"id": "p1", "title": "Lighthouse Keeper", "description": "A keeper tends a lighthouse on a cold northern rock.",
     "genres": ["Drama"]},
    {"id": "a2", "title": "Harbour Lights", "description": "Fishermen wait out a storm in a small harbour town.",
     "genres": ["Drama"]},
    {"id": "a3", "title": "Northern Rock", "description": "A family runs a lighthouse through a long winter.",
     "genres": ["Drama"]},
]
B_PRODUCTS = [
    {"id": "p1", "title": f"{MARK} Express", "description": f"A {MARK} train races across the desert at night.",
     "genres": [MARK]},
    {"id": "pb", "title": f"{MARK} Depot", "description": f"The {MARK} rail depot hides a stolen engine.",
     "genres": [MARK]},
    {"id": "pw", "title": f"{MARK} Signal", "description": f"A {MARK} signalman hears a train that never comes.",
     "genres": [MARK]},
]
B_ONLY = ["pb", "ub"]  # ids A never writes (A's writes to pw and uw make A's own)


def declared_routes(app) -> set[tuple[str, str]]:
    return {(route.method, route.resource.canonical) for route in app.router.routes()
            if route.method != "HEAD" and route.resource is not None}


def test_the_list_covers_every_route_of_both_services():
    public = {"/health/live", "/health/ready", "/metrics", "/", "/static", "/openapi.json", "/docs"}
    for name, app in (("ingest", create_ingest(IngestSettings())), ("api", create_api(ApiSettings()))):
        routes = {(method, path) for method, path in declared_routes(app) if path not in public
                  and not path.startswith(("/static", "/docs"))}
        assert routes == ENDPOINTS[name], f"{name}: list the new routes in this test and check them"


class As:
    """Requests with one tenant's keys: read key to the api, write key to ingest."""

    def __init__(self, session: aiohttp.ClientSession, stack, keys):
        self.session, self.stack, self.keys = session, stack, keys

    async def call(self, method: str, url: str, role: str, **kwargs) -> tuple[int, object]:
        async with self.session.request(method, url, headers=self.keys.headers(role), **kwargs) as response:
            return response.status, await response.json()

    async def api(self, method: str, path: str, **kwargs) -> tuple[int, object]:
        return await self.call(method, f"{self.stack.api_url}{path}", "read", **kwargs)

    async def ingest(self, method: str, path: str, **kwargs) -> tuple[int, object]:
        return await self.call(method, f"{self.stack.ingest_url}{path}", "write", **kwargs)


async def _wait_ready(client: As, ids: list[str], timeout_s: float = 120) -> None:
    for _ in range(int(timeout_s * 4)):
        states = [(await client.api("GET", f"/v1/products/{pid}"))[1].get("embedding_status") for pid in ids]
        if all(state == "ready" for state in states):
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"not embedded: {states}")


@pytest.fixture(scope="module")
async def tenants(stack, pool):
    keys_a, keys_b = await new_tenant(pool, "iso-a"), await new_tenant(pool, "iso-b")
    async with aiohttp.ClientSession() as session:
        a, b = As(session, stack, keys_a), As(session, stack, keys_b)
        for client, products in ((a, A_PRODUCTS), (b, B_PRODUCTS)):
            assert (await client.ingest("POST", "/v1/products", json=products))[0] == 202
        await asyncio.gather(_wait_ready(a, [p["id"] for p in A_PRODUCTS]), _wait_ready(b, [p["id"] for p in B_PRODUCTS]))
        for client, user, liked in ((a, "u1", ["p1"]), (b, "u1", ["p1", "pb"]), (b, "ub", ["pb"]), (b, "uw", ["pw"])):
            events = [{"product_id": pid, "type": "like"} for pid in liked]
            assert (await client.ingest("POST", f"/v1/users/{user}/interactions", json=events))[0] == 201
        yield a, b


def assert_nothing_of_b(body: object) -> None:
    text = json.dumps(body)
    assert MARK not in text, text[:500]
    assert not [pid for pid in B_ONLY if f'"{pid}"' in text], text[:500]


def same_answer(mine: tuple[int, object], theirs: tuple[int, object], their_id: str, unknown_id: str) -> None:
    """B's id answers as an id nobody has: the same status and the same body but for the id itself
    (and the cursor, which is bound to the request's parameters)."""
    def plain(body: object, pid: str) -> str:
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k != "next_cursor"}
        return json.dumps(body).replace(pid, "?")

    assert mine[0] == theirs[0]
    assert plain(mine[1], their_id) == plain(theirs[1], unknown_id)


async def test_a_reads_nothing_of_b_through_the_api(tenants):
    a, _ = tenants
    nobody = f"nx{uuid.uuid4().hex[:6]}"
    status, body = await a.api("GET", "/v1/products/p1")
    assert status == 200 and body["title"] == "Lighthouse Keeper"
    same_answer(await a.api("GET", "/v1/products/pb"), await a.api("GET", f"/v1/products/{nobody}"), "pb", nobody)
    assert (await a.api("GET", "/v1/products/pb"))[0] == 404
    same_answer(await a.api("GET", "/v1/products/pb/similar"), await a.api("GET", f"/v1/products/{nobody}/similar"),
                "pb", nobody)
    same_answer(await a.api("GET", "/v1/users/ub/interactions"), await a.api("GET", f"/v1/users/{nobody}/interactions"),
                "ub", nobody)
    assert (await a.api("GET", "/v1/users/ub/interactions"))[0] == 404
    same_answer(await a.api("GET", "/v1/users/ub/recommendations"),
                await a.api("GET", f"/v1/users/{nobody}/recommendations"), "ub", nobody)
    same_answer(await a.api("POST", "/v1/recommendations", json={"liked": ["pb"]}),
                await a.api("POST", "/v1/recommendations", json={"liked": [nobody]}), "pb", nobody)
    same_answer(await a.api("POST", "/api/products/recommendation", json={"products": ["pb"]}),
                await a.api("POST", "/api/products/recommendation", json={"products": [nobody]}), "pb", nobody)
    same_answer(await a.api("GET", "/api/products/recommendation", params={"users_id": "ub"}),
                await a.api("GET", "/api/products/recommendation", params={"users_id": nobody}), "ub", nobody)

    status, history = await a.api("GET", "/v1/users/u1/interactions")
    assert status == 200 and [e["product_id"] for e in history["items"]] == ["p1"]
    assert_nothing_of_b(history)
    everything = [
        await a.api("GET", "/v1/products", params={"limit": "100"}),
        await a.api("GET", "/v1/products", params={"query": MARK}),
        await a.api("GET", "/v1/products/p1"),
        await a.api("GET", "/v1/products/p1/similar", params={"limit": "100"}),
        await a.api("GET", "/v1/genres"),
        await a.api("GET", "/v1/users", params={"limit": "1000"}),
        await a.api("GET", "/v1/users/u1/recommendations", params={"limit": "100"}),
        await a.api("POST", "/v1/recommendations", json={"liked": ["p1", "pb"], "limit": 100}),
        await a.api("GET", "/api/ping"),
        await a.api("GET", "/api/products"),
        await a.api("GET", "/api/products/recommendation", params={"users_id": "u1", "limit": "100"}),
        await a.api("POST", "/api/products/recommendation", json={"products": ["p1"], "limit": 100}),
    ]
    assert [status for status, _ in everything] == [200] * len(everything)
    for _, body in everything:
        assert_nothing_of_b(body)
    products, search, genres, users = everything[0][1], everything[1][1], everything[4][1], everything[5][1]
    assert {"p1", "a2", "a3"} <= {p["id"] for p in products["items"]} <= {"p1", "a2", "a3", "pw"}
    assert search["items"] == []
    assert {g["genre"] for g in genres["items"]} <= {"Drama"}
    assert {"u1"} <= {u["id"] for u in users["items"]} <= {"u1", "uw"}


async def test_a_cursor_of_one_tenant_is_refused_for_another(tenants):
    a, b = tenants
    _, page = await a.api("GET", "/v1/products", params={"limit": "1"})
    status, body = await b.api("GET", "/v1/products", params={"limit": "1", "cursor": page["next_cursor"]})
    assert status == 400 and body["error"]["details"][0]["field"] == "cursor"
    _, page = await a.api("GET", "/v1/users/u1/recommendations", params={"limit": "1"})
    assert page["next_cursor"]
    status, body = await b.api("GET", "/v1/users/u1/recommendations", params={"limit": "1", "cursor": page["next_cursor"]})
    assert status == 400 and body["error"]["details"][0]["field"] == "cursor"


async def test_a_changes_and_deletes_nothing_of_b(tenants, pool):
    a, b = tenants
    _, before = await b.api("GET", "/v1/users/uw/interactions")
    assert (await a.ingest("PUT", "/v1/products/pw", json={"title": "Mine now", "description": "A's own product."}))[0] == 202
    assert (await a.ingest("POST", "/v1/products", json={"id": "p1", "title": "Lighthouse Keeper",
                                                        "description": "A keeper tends a lighthouse on a cold northern rock.",
                                                        "genres": ["Drama"]}))[0] == 202
    nobody = f"nx{uuid.uuid4().hex[:6]}"
    same_answer(await a.ingest("DELETE", "/v1/products/pb"), await a.ingest("DELETE", f"/v1/products/{nobody}"),
                "pb", nobody)
    same_answer(await a.ingest("POST", "/v1/users/uw/interactions", json=[{"product_id": "pb", "type": "like"}]),
                await a.ingest("POST", "/v1/users/uw/interactions", json=[{"product_id": nobody, "type": "like"}]),
                "pb", nobody)
    same_answer(await a.ingest("POST", "/v1/orders", json={"user_id": "uw", "items": [{"product_id": "pb"}]}),
                await a.ingest("POST", "/v1/orders", json={"user_id": "uw", "items": [{"product_id": nobody}]}),
                "pb", nobody)
    assert (await a.ingest("POST", "/v1/users/uw/interactions", json=[{"product_id": "a2", "type": "like"}]))[0] == 201
    await asyncio.sleep(1.5)  # let the workers apply A's writes and delete
    for pid in ("p1", "pb", "pw"):
        status, body = await b.api("GET", f"/v1/products/{pid}")
        assert status == 200 and MARK in body["title"], (pid, body)
    _, after = await b.api("GET", "/v1/users/uw/interactions")
    assert after == before
    assert (await a.api("GET", "/v1/products/pw"))[1]["title"] == "Mine now"
    rows = await pool.fetch("SELECT tenant_id, title FROM products WHERE tenant_id = ANY($1) AND id = 'pw'",
                            [a.keys.tenant, b.keys.tenant])
    assert {r["tenant_id"]: r["title"] for r in rows} == {a.keys.tenant: "Mine now", b.keys.tenant: f"{MARK} Signal"}
