"""`recommender reembed` on the real stack: a tenant moves to a model of another dimension while
requests keep flowing; none fails and each answer comes wholly from one model."""
import asyncio
import os
import subprocess
import sys

import aiohttp

from tests.e2e.recommend.conftest import tenant_services
from tools.demo import demo_data, wait_embedded

OLD, NEW = "all-MiniLM-L6-v2", "minilm-proj-256"
CATALOGUE = 30  # films of the demo catalogue


async def ranking(session: aiohttp.ClientSession, api_url: str, user: str) -> tuple[int, str | None, list]:
    async with session.get(f"{api_url}/v1/users/{user}/recommendations",
                           params={"strategy": "content", "limit": "10"}) as response:
        body = await response.json()
        if response.status != 200:
            return response.status, None, [body]
        return 200, body["model"], [(item["product"]["id"], item["score"]) for item in body["items"]]


async def run(*args: str, env: dict) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(sys.executable, *args, env={**os.environ, **env},
                                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = await process.communicate()
    return process.returncode, output.decode()


async def test_a_model_switch_under_load_never_fails_a_request_nor_mixes_models(stack, pool, database_url, amqp_url,
                                                                                   amqp_prefix):
    models_dir = stack.env["MODELS_DIR"]
    env = dict(stack.env)
    build = asyncio.create_task(run("-m", "tools.projection_model", f"{models_dir}/{NEW}", "--dimension", "256",
                                    env=env))
    movies = demo_data()["movies"][:CATALOGUE]
    user = "switcher"
    async with tenant_services(pool, database_url, amqp_url, amqp_prefix, "switch") as (keys, ingest_url, api_url):
        tenant = keys.tenant
        async with aiohttp.ClientSession(headers=keys.headers("write")) as session:
            async with session.post(f"{ingest_url}/v1/products", json=movies) as response:
                assert response.status == 202, await response.text()
            likes = [{"product_id": m["id"], "type": "like"} for m in movies[:3]]
            async with session.post(f"{ingest_url}/v1/users/{user}/interactions", json=likes) as response:
                assert response.status == 201, await response.text()
            assert await wait_embedded(session, api_url, [m["id"] for m in movies], 180) == CATALOGUE
            status, built = await build
            assert status == 0, built
            status, model, before = await ranking(session, api_url, user)
            assert (status, model) == (200, OLD) and len(before) == 10
            reembed = asyncio.create_task(run("-m", "tools.cli", "reembed", "--tenant", tenant, "--model", NEW,
                                              "--grace-s", "2",
                                              "--timeout-s", "600", env=env))
            answers = []

            async def keep_asking() -> None:
                while not reembed.done():
                    answers.append(await ranking(session, api_url, user))

            await asyncio.gather(*(keep_asking() for _ in range(3)))
            status, output = await reembed
            assert status == 0, output
            assert f"switched from {OLD} to {NEW}" in output
            answers.append(await ranking(session, api_url, user))
            status, model, after = answers[-1]
            assert (status, model) == (200, NEW) and len(after) == 10
            # the catalogue still reads as embedded: a product's status follows its tenant's model
            assert await wait_embedded(session, api_url, [m["id"] for m in movies], 30) == CATALOGUE
    assert [a for a in answers if a[0] != 200] == []
    assert {model for _, model, _ in answers} == {OLD, NEW}  # the switch happened while requests flowed
    assert after != before  # another geometry: another ranking
    for _, model, items in answers:
        assert items == (before if model == OLD else after)  # wholly one model's answer
    vectors = dict(await pool.fetch("SELECT model, count(*) FROM product_vectors WHERE tenant_id = $1 GROUP BY model",
                                    tenant))
    assert vectors == {NEW: CATALOGUE}  # the old vectors dropped after the switch
    assert await pool.fetchval("SELECT dimension FROM embedding_models WHERE name = $1", NEW) == 256
