"""End to end on the real parts: HTTP -> RabbitMQ -> two embedder processes -> pgvector."""
import asyncio
import json
import random

import aio_pika
import aiohttp
import numpy as np
import pytest

from shared.amqp import ROUTING_KEY, Topology
from tests.processes import wait_ready
from tests.waiting import wait_for
from tools.chaos.load import catalogue


async def post_all(session: aiohttp.ClientSession, ingest_url: str, products: list[dict], batch: int = 50):
    for start in range(0, len(products), batch):
        async with session.post(f"{ingest_url}/v1/products", json=products[start:start + batch]) as response:
            assert response.status == 202, await response.text()


async def statuses(session: aiohttp.ClientSession, api_url: str, ids: list[str]) -> dict[str, str]:
    async def one(pid):
        async with session.get(f"{api_url}/v1/products/{pid}") as response:
            return (await response.json())["embedding_status"] if response.status == 200 else "missing"

    return dict(zip(ids, await asyncio.gather(*(one(pid) for pid in ids))))


async def wait_all_ready(session, api_url, ids, timeout_s=240) -> None:
    async def not_ready():
        current = await statuses(session, api_url, ids)
        return [pid for pid, status in current.items() if status != "ready"] or None

    try:
        await wait_for(lambda: _none(not_ready()), timeout_s, f"{len(ids)} products to be embedded", every_s=1)
    except AssertionError:
        waiting = await not_ready()
        raise AssertionError(f"{len(waiting)} products never became ready, e.g. {waiting[:5]}") from None


async def _none(awaitable) -> bool:
    return await awaitable is None


@pytest.fixture(scope="session")
def encoder():
    from services.embedder.encoder import Encoder

    return Encoder("all-MiniLM-L6-v2")


async def test_200_products_flow_to_real_vectors(stack, pool, encoder, unique):
    products = catalogue(f"e2e-{unique}", 200)
    ids = [p["id"] for p in products]
    async with aiohttp.ClientSession(headers=stack.keys.headers("write")) as session:
        await post_all(session, stack.ingest_url, products)
        await wait_all_ready(session, stack.api_url, ids)
        async with session.get(f"{stack.api_url}/v1/products/{ids[0]}") as response:
            first = await response.json()
    assert first["title"] == products[0]["title"] and first["genres"] == products[0]["genres"]

    rows = await pool.fetch("SELECT product_id, embedding FROM product_vectors WHERE product_id = ANY($1)", ids)
    assert len(rows) == 200
    vectors = np.stack([row["embedding"].to_numpy() for row in rows])
    assert vectors.shape == (200, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)

    # They are the real model's: a product's own text, embedded here, finds that product first.
    from shared.schemas import embedding_text

    sample = random.Random(unique).sample(products, 20)
    queries = encoder.encode_sync([embedding_text(p["title"], p["description"]) for p in sample])
    for product, query in zip(sample, queries):
        nearest = await pool.fetchval(
            "SELECT product_id FROM product_vectors WHERE model = $2 ORDER BY embedding <=> $1 LIMIT 1", query,
            encoder.model_name,  # other tests store vectors of other models (and dimensions) too
        )
        assert nearest == product["id"]


def handled_by(process, prefix: str) -> list[dict]:
    """The "handled" log lines of a worker for products whose id starts with `prefix`. Only whole
    lines: the worker may be writing the last one as the log is read (or was killed mid-line)."""
    text = process.log()
    lines = [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("msg", "").startswith("handled")
            and str(line.get("product_id", "")).startswith(prefix)]


async def test_a_killed_worker_loses_nothing_and_duplicates_nothing(stack, pool, unique):
    prefix = f"crash-{unique}"
    products = catalogue(prefix, 240)
    ids = [p["id"] for p in products]
    victim = stack.workers[0]
    wait_ready(victim)  # consuming, not still loading the model
    async with aiohttp.ClientSession(headers=stack.keys.headers("write")) as session:
        await post_all(session, stack.ingest_url, products, batch=80)
        # Kill it mid-stream: once it has handled some of these, while it holds more unacked.
        await wait_for(lambda: len(handled_by(victim, prefix)) >= 16, 120,
                       "the victim worker to handle 16 of the products")
        victim.kill()
        stack.workers.remove(victim)
        replacement = stack.start_worker(f"embedder-replacement-{unique}")
        await wait_all_ready(session, stack.api_url, ids)
    # The kill hit work in flight: messages the victim held unacked were delivered again.
    redelivered = [line for worker in stack.workers for line in handled_by(worker, prefix) if line.get("redelivered")]
    assert redelivered, "no message was redelivered: the kill came too late to hit work in flight"
    counts = await pool.fetch(
        "SELECT p.id, count(v.product_id) AS vectors, bool_and(v.content_hash = p.content_hash) AS current,"
        " max(v.writes) AS writes"
        " FROM products p LEFT JOIN product_vectors v ON v.tenant_id = p.tenant_id AND v.product_id = p.id"
        " WHERE p.id = ANY($1) GROUP BY p.id",
        ids,
    )
    assert len(counts) == 240
    assert all(row["vectors"] == 1 and row["current"] for row in counts)
    assert [row["id"] for row in counts if row["writes"] > 1] == [], "embedded more than once"
    assert replacement.popen.poll() is None


async def test_a_malformed_message_is_dead_lettered_and_the_workers_keep_consuming(stack, amqp_url, pool, unique):
    topology = Topology(stack.env["AMQP_PREFIX"])
    poison = f'{{"type": "product.upsert", "poison": "{unique}"}}'.encode()
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(topology.exchange)
        await exchange.publish(aio_pika.Message(poison, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), ROUTING_KEY)
    dead = await wait_for(lambda: pool.fetchrow("SELECT reason, attempts FROM dead_letters WHERE body = $1", poison),
                          60, "the malformed message to be recorded as a dead letter")
    assert "invalid message" in dead["reason"] and dead["attempts"] >= 1

    products = catalogue(f"after-poison-{unique}", 3)
    async with aiohttp.ClientSession(headers=stack.keys.headers("write")) as session:
        await post_all(session, stack.ingest_url, products)
        await wait_all_ready(session, stack.api_url, [p["id"] for p in products], timeout_s=60)
    assert all(worker.popen.poll() is None for worker in stack.workers)


async def test_sigterm_finishes_the_batch_in_hand_and_exits_0(stack, unique):
    products = catalogue(f"term-{unique}", 120)
    ids = [p["id"] for p in products]
    leaving = stack.workers[-1]
    wait_ready(leaving)  # consuming, not still loading the model
    async with aiohttp.ClientSession(headers=stack.keys.headers("write")) as session:
        await post_all(session, stack.ingest_url, products, batch=120)
        async def some_ready():
            return sum(s == "ready" for s in (await statuses(session, stack.api_url, ids)).values()) >= 8

        await wait_for(some_ready, 120, "8 of the products to be embedded before the SIGTERM", every_s=0.2)
        assert leaving.terminate(timeout_s=60) == 0
        stack.workers.remove(leaving)
        stack.start_worker(f"embedder-after-term-{unique}")
        await wait_all_ready(session, stack.api_url, ids)
    assert "worker stopped" in leaving.log()
