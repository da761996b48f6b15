"""The auth middleware, key cache and token buckets, on a small app with fake keys and a fake clock."""
import pytest
from aiohttp import web

from shared import keys
from shared.auth import KeyCache, Policy, public, setup_auth, tenant_of
from shared.http import errors_middleware, setup_metrics
from shared.keys import KeyRecord
from shared.ratelimit import TokenBuckets
from shared.settings import IngestSettings


class FakeKeys:
    records = {"r": KeyRecord("kr", "t1", "read"), "w": KeyRecord("kw", "t1", "write"),
               "slow": KeyRecord("ks", "t2", "write", rate_per_s=1, rate_burst=2)}

    async def lookup(self, key):
        return self.records.get(key)

    async def tenant(self, tenant_id):
        return KeyRecord(f"tenant:{tenant_id}", tenant_id, "read") if tenant_id == "demo" else None


async def whoami(request: web.Request) -> web.Response:
    return web.json_response({"tenant": tenant_of(request)})


def make_app(**settings) -> web.Application:
    settings = IngestSettings(**settings)
    app = web.Application(middlewares=[errors_middleware])
    setup_metrics(app, "test")
    policy = Policy(lambda r: None if public(settings, r) else ("write" if r.method == "POST" else "read"),
                    lambda r: "demo" if r.path.startswith("/api/") else None)
    setup_auth(app, settings, lambda: None, policy, FakeKeys())
    app.router.add_get("/v1/me", whoami)
    app.router.add_post("/v1/me", whoami)
    app.router.add_get("/api/me", whoami)
    app.router.add_get("/health/live", lambda r: web.json_response({"status": "ok"}))
    return app


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


async def test_missing_malformed_and_unknown_keys_are_401_with_a_bearer_challenge(aiohttp_client):
    client = await aiohttp_client(make_app())
    for headers in ({}, {"Authorization": "Basic dTpw"}, {"Authorization": "Bearer"}, bearer("nope")):
        response = await client.get("/v1/me", headers=headers)
        body = await response.json()
        assert response.status == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert body["error"]["code"] == "unauthorized" and body["error"]["details"][0]["field"] == "Authorization"


async def test_the_tenant_comes_from_the_key_and_roles_are_checked(aiohttp_client):
    client = await aiohttp_client(make_app())
    response = await client.get("/v1/me", headers=bearer("r"))
    assert response.status == 200 and (await response.json()) == {"tenant": "t1"}
    assert (await client.post("/v1/me", headers=bearer("w"))).status == 200
    response = await client.post("/v1/me", headers=bearer("r"))
    assert response.status == 403 and (await response.json())["error"]["code"] == "forbidden"


async def test_health_and_metrics_are_open_unless_metrics_are_closed(aiohttp_client):
    client = await aiohttp_client(make_app())
    assert (await client.get("/health/live")).status == 200
    assert (await client.get("/metrics")).status == 200
    closed = await aiohttp_client(make_app(metrics_public=False))
    assert (await closed.get("/metrics")).status == 401
    assert (await closed.get("/metrics", headers=bearer("r"))).status == 200


async def test_keyless_tenant_answers_only_where_the_policy_says(aiohttp_client):
    client = await aiohttp_client(make_app())
    response = await client.get("/api/me")
    assert response.status == 200 and (await response.json()) == {"tenant": "demo"}
    response = await client.get("/api/me", headers=bearer("w"))  # a key, when sent, wins
    assert (await response.json()) == {"tenant": "t1"}


async def test_a_key_in_the_query_string_is_refused_even_with_a_good_header(aiohttp_client):
    client = await aiohttp_client(make_app())
    _, key = keys.new_key()
    for query in ({"api_key": "r"}, {"key": "x"}, {"q": key}):
        response = await client.get("/v1/me", params=query, headers=bearer("r"))
        body = await response.json()
        assert response.status == 400 and body["error"]["code"] == "key_in_query", query
        assert key not in str(body)


async def test_over_the_rate_is_429_with_retry_after(aiohttp_client):
    client = await aiohttp_client(make_app())
    statuses = [(await client.get("/v1/me", headers=bearer("slow"))).status for _ in range(3)]
    assert statuses == [200, 200, 429]
    response = await client.get("/v1/me", headers=bearer("slow"))
    assert response.status == 429 and response.headers["Retry-After"] == "1"
    assert (await response.json())["error"]["code"] == "rate_limited"
    assert (await client.get("/v1/me", headers=bearer("r"))).status == 200  # other keys are unaffected


def test_token_bucket_refills_at_the_rate():
    now = [0.0]
    buckets = TokenBuckets(clock=lambda: now[0])
    assert [buckets.take("k", 2, 3) for _ in range(3)] == [0, 0, 0]
    assert buckets.take("k", 2, 3) == pytest.approx(0.5)
    now[0] = 0.5
    assert buckets.take("k", 2, 3) == 0 and buckets.take("k", 2, 3) > 0


class FakePool:
    """api_keys rows by id, as keys.lookup reads them."""

    def __init__(self):
        self.rows, self.queries = {}, 0

    async def fetchrow(self, query, key_id):
        self.queries += 1
        return self.rows.get(key_id)

    async def execute(self, query, key_id):
        pass


async def test_a_revoked_key_stops_working_once_its_cache_entry_expires():
    pool, now = FakePool(), [0.0]
    key_id, key = keys.new_key()
    pool.rows[key_id] = {"tenant_id": "t1", "role": "read", "key_hash": keys.key_hash(key), "rate_per_s": None,
                         "rate_burst": None, "catalogue_quota": None}
    cache = KeyCache(lambda: pool, ttl_s=5, clock=lambda: now[0])
    assert (await cache.lookup(key)).tenant_id == "t1"
    del pool.rows[key_id]  # revoked: the lookup query no longer finds it
    now[0] = 4.9
    assert await cache.lookup(key) is not None and pool.queries == 1
    now[0] = 5.1
    assert await cache.lookup(key) is None
    forged = key[:-1] + ("A" if key[-1] != "A" else "B")  # right id, wrong secret
    pool.rows[key_id] = {"tenant_id": "t1", "role": "read", "key_hash": keys.key_hash(key), "rate_per_s": None,
                         "rate_burst": None, "catalogue_quota": None}
    assert await cache.lookup(forged) is None


def test_keys_are_recognisable_random_and_carry_their_id():
    made = {keys.new_key() for _ in range(100)}
    assert len({key for _, key in made}) == 100
    for key_id, key in made:
        assert key.startswith("rk_") and len(key) == 3 + 12 + 1 + 43 and keys.key_id_of(key) == key_id
    assert keys.key_id_of("rk_nothex000000_" + "a" * 43) is None


def test_production_refuses_demo_modes_open_spike_routes():
    from pydantic import ValidationError

    from shared.settings import ApiSettings

    assert ApiSettings(mode="demo").spike_routes_open and not ApiSettings().spike_routes_open
    assert not ApiSettings(mode="demo", open_spike_routes=False).spike_routes_open
    with pytest.raises(ValidationError, match="MODE=production refuses OPEN_SPIKE_ROUTES"):
        ApiSettings(mode="production", open_spike_routes=True)


def test_the_api_does_not_start_in_production_with_open_spike_routes():
    import os
    import subprocess
    import sys

    from tests.processes import ROOT

    result = subprocess.run([sys.executable, "-m", "services.api"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "MODE": "production", "OPEN_SPIKE_ROUTES": "true", "PORT": "1"},
                            timeout=60)
    assert result.returncode != 0 and "MODE=production refuses OPEN_SPIKE_ROUTES" in result.stderr
