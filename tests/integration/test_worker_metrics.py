"""The worker's /metrics on a real RabbitMQ: the queue depth is the broker's, not a stale count."""
import uuid

import aio_pika
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.embedder.health import create_health_app
from services.embedder.metrics import WorkerMetrics
from shared.amqp import ROUTING_KEY, Topology, declare
from tests.conftest import _delete_topology


@pytest.fixture
async def channel(amqp_url):
    topology = Topology(f"test-metrics-{uuid.uuid4().hex[:8]}")
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel()
    yield channel, topology
    await connection.close()
    await _delete_topology(amqp_url, topology)


def samples(text: str) -> dict[str, float]:
    return {sample.name: sample.value for family in text_string_to_metric_families(text) for sample in family.samples}


async def test_queue_depth_follows_the_queue(aiohttp_client, channel, pool):
    channel, topology = channel
    exchange, queue = await declare(channel, topology)
    client = await aiohttp_client(create_health_app(WorkerMetrics(), pool, channel, queue))
    assert samples(await (await client.get("/metrics")).text())["embedder_queue_depth"] == 0
    for index in range(3):
        await exchange.publish(aio_pika.Message(body=b"{}", message_id=str(index)), routing_key=ROUTING_KEY)
    seen = samples(await (await client.get("/metrics")).text())
    assert seen["embedder_queue_depth"] == 3
    assert seen["embedder_db_pool_in_use"] == 0
