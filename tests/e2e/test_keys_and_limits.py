"""Keys, rate limits and quotas on the running stack: each test on a tenant of its own."""
import asyncio
import time

import aiohttp
import pytest

from shared.keys import revoke_key
from tests.conftest import new_tenant

pytestmark = pytest.mark.e2e

PRODUCT = {"title": "Quota film", "description": "A film that counts against the catalogue quota."}


async def test_a_revoked_key_stops_working_within_10_s_on_every_service(stack, pool):
    keys = await new_tenant(pool, "revoke")
    urls = [f"{stack.api_url}/v1/genres", f"{stack.ingest_url}/v1/users/u/interactions"]
    async with aiohttp.ClientSession(headers=keys.headers("write")) as session:
        async with session.get(urls[0]) as response:
            assert response.status == 200  # cached now
        await revoke_key(pool, keys.write.split("_")[1])
        revoked_at = time.monotonic()
        refused = {}
        while len(refused) < 2 and time.monotonic() - revoked_at < 12:
            for url, method in zip(urls, ("GET", "POST")):
                async with session.request(method, url, json=[]) as response:
                    if response.status == 401 and url not in refused:
                        refused[url] = time.monotonic() - revoked_at
                        assert response.headers["WWW-Authenticate"].startswith("Bearer")
            await asyncio.sleep(0.25)
    assert len(refused) == 2 and max(refused.values()) < 10, refused


async def test_over_the_tenants_rate_is_429_with_retry_after(stack, pool):
    keys = await new_tenant(pool, "rate")
    await pool.execute("UPDATE tenants SET rate_per_s = 0.5, rate_burst = 3 WHERE id = $1", keys.tenant)
    async with aiohttp.ClientSession(headers=keys.headers()) as session:
        statuses = []
        for _ in range(5):
            async with session.get(f"{stack.api_url}/v1/genres") as response:
                statuses.append(response.status)
                retry_after = response.headers.get("Retry-After")
                body = await response.json()
    assert statuses == [200, 200, 200, 429, 429]
    assert body["error"]["code"] == "rate_limited" and 1 <= int(retry_after) <= 2


async def test_a_write_past_the_catalogue_quota_is_refused_and_nothing_is_queued(stack, pool):
    keys = await new_tenant(pool, "quota")
    await pool.execute("UPDATE tenants SET catalogue_quota = 2 WHERE id = $1", keys.tenant)
    async with aiohttp.ClientSession(headers=keys.headers("write")) as session:
        async with session.post(f"{stack.ingest_url}/v1/products", json=[{**PRODUCT, "id": f"q{i}"} for i in range(3)]) as response:
            body = await response.json()
            assert response.status == 403 and body["error"]["code"] == "quota_exceeded"
            assert "quota is 2 products" in body["error"]["message"]
        async with session.post(f"{stack.ingest_url}/v1/products", json=[{**PRODUCT, "id": "q0"}, {**PRODUCT, "id": "q1"}]) as response:
            assert response.status == 202
        async with session.put(f"{stack.ingest_url}/v1/products/q0", json=PRODUCT) as response:
            assert response.status == 202, "rewriting a product already counted stays within the quota"
    await asyncio.sleep(1)
    ids = await pool.fetch("SELECT id FROM products WHERE tenant_id = $1 ORDER BY id", keys.tenant)
    assert [r["id"] for r in ids] == ["q0", "q1"]


async def test_a_key_in_the_query_string_is_refused_and_never_logged(stack):
    key = stack.keys.read
    async with aiohttp.ClientSession() as session:
        for base, name in ((stack.api_url, "api_key"), (stack.ingest_url, "token"), (stack.api_url, "q")):
            async with session.get(f"{base}/v1/genres", params={name: key}) as response:
                body = await response.json()
                assert response.status == 400 and body["error"]["code"] == "key_in_query"
                assert key not in await response.text()
    await asyncio.sleep(0.5)
    for process in stack.processes:
        assert key not in process.log(), f"{process.name} logged the key"


async def test_roles_and_missing_keys_on_the_stack(stack):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{stack.api_url}/v1/genres") as response:
            assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
        async with session.delete(f"{stack.ingest_url}/v1/products/x", headers=stack.keys.headers("read")) as response:
            assert response.status == 403 and (await response.json())["error"]["code"] == "forbidden"
        for path in ("/health/ready", "/metrics"):
            async with session.get(f"{stack.ingest_url}{path}") as response:
                assert response.status == 200, path
