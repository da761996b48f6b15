"""The ingest service on a real RabbitMQ and PostgreSQL, with no worker consuming: what the
queue holds after each request is exactly what was accepted."""
import asyncio
import uuid

import aio_pika
import pytest

from services.ingest.app import create_app
from shared.amqp import Topology
from shared.schemas import ProductMessage
from shared.settings import IngestSettings
from tests.conftest import _delete_topology, new_tenant
from tests.waiting import wait_for


@pytest.fixture
async def topology(amqp_url):
    topology = Topology(f"test-ingest-{uuid.uuid4().hex[:8]}")
    yield topology
    await _delete_topology(amqp_url, topology)


@pytest.fixture
async def client(aiohttp_client, settings, topology, tenant_keys):
    app = create_app(IngestSettings(**{**settings.model_dump(), "amqp_prefix": topology.prefix}))
    client = await aiohttp_client(app, headers=tenant_keys.headers("write"))
    for _ in range(100):
        if (await client.get("/health/ready")).status == 200:
            return client
        await asyncio.sleep(0.1)
    raise AssertionError(await (await client.get("/health/ready")).text())


async def queued(amqp_url: str, queue_name: str) -> list[ProductMessage]:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name)
        messages = []
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            messages.append(ProductMessage.model_validate_json(message.body))
        return messages


GOOD = {"title": "Heat", "description": "A detective hunts a thief in Los Angeles.", "year": 1995}


async def test_accepted_products_are_in_the_queue_and_visible_as_pending(client, amqp_url, topology, pool, unique,
                                                                         tenant_keys):
    response = await client.post("/v1/products", json=[{**GOOD, "id": f"q-{unique}-{i}"} for i in range(3)])
    assert response.status == 202
    messages = await queued(amqp_url, topology.queue)
    assert sorted(m.product_id for m in messages) == [f"q-{unique}-{i}" for i in range(3)]
    pending = await pool.fetch("SELECT tenant_id FROM products WHERE id LIKE $1", f"q-{unique}-%")
    assert [row["tenant_id"] for row in pending] == [tenant_keys.tenant] * 3
    assert {m.tenant_id for m in messages} == {tenant_keys.tenant}


@pytest.mark.parametrize(
    "method, path, payload, field",
    [
        ("post", "/v1/products", [GOOD, {**GOOD, "description": ""}], "[1].description"),
        ("post", "/v1/products", {**GOOD, "metadata": {"cast": {"lead": "x"}}}, "metadata"),
        ("put", "/v1/products/ok-id", {**GOOD, "title": None}, "title"),
        ("put", "/v1/products/no%20spaces", GOOD, "id"),
        ("delete", "/v1/products/%2Fslash", None, "id"),
    ],
)
async def test_bad_input_is_a_4xx_naming_the_field_and_nothing_is_queued(
    client, amqp_url, topology, method, path, payload, field
):
    response = await getattr(client, method)(path, json=payload)
    body = await response.json()
    assert response.status == 422
    assert field in [detail["field"] for detail in body["error"]["details"]]
    assert await queued(amqp_url, topology.queue) == []


async def test_broker_unreachable_is_503_with_retry_after(aiohttp_client, settings, tenant_keys):
    app = create_app(IngestSettings(**{**settings.model_dump(), "amqp_url": "amqp://guest:guest@127.0.0.1:1/"}))
    client = await aiohttp_client(app, headers=tenant_keys.headers("write"))
    for _ in range(100):  # the key check waits for the database pool, which opens in the background
        response = await client.post("/v1/products", json=GOOD)
        message = (await response.json())["error"]["message"]
        if "broker" in message:
            break
        await asyncio.sleep(0.1)
    assert response.status == 503 and int(response.headers["Retry-After"]) > 0
    assert "broker" in message


async def test_a_full_backlog_refuses_writes_with_retry_after_until_it_drains(aiohttp_client, settings, topology,
                                                                               amqp_url, unique, tenant_keys):
    app = create_app(IngestSettings(**{**settings.model_dump(), "amqp_prefix": topology.prefix, "max_backlog": 4,
                                       "backlog_retry_after_s": 7}))
    client = await aiohttp_client(app, headers=tenant_keys.headers("write"))
    await wait_for(lambda: _ready(client), 10, "ingest to become ready")
    accepted = await client.post("/v1/products", json=[{**GOOD, "id": f"bp-{unique}-{i}"} for i in range(4)])
    assert accepted.status == 202

    admitted = []  # the depth is re-read at most every second: writes until then still get in

    async def refused():
        response = await client.post("/v1/products", json={**GOOD, "id": f"bp-{unique}-late-{len(admitted)}"})
        if response.status == 202:
            admitted.append(response)
        return response if response.status == 503 else None

    response = await wait_for(refused, 5, "a write to be refused once 4 messages wait")
    body = await response.json()
    assert body["error"]["code"] == "backlog_full" and response.headers["Retry-After"] == "7"
    # Everything answered 202 is queued, nothing refused is; reading the queue drains it.
    assert len(await queued(amqp_url, topology.queue)) == 4 + len(admitted)

    async def accepted_again():
        response = await client.post("/v1/products", json={**GOOD, "id": f"bp-{unique}-late"})
        return response.status == 202

    await wait_for(accepted_again, 5, "writes to be accepted again once the backlog drained")


async def _ready(client) -> bool:
    return (await client.get("/health/ready")).status == 200


async def test_a_tenant_with_too_many_pending_products_gets_429_and_others_are_not_held_up(
        aiohttp_client, settings, topology, pool, unique):
    async def ingest_for(prefix: str):
        keys = await new_tenant(pool, prefix)
        app = create_app(IngestSettings(**{**settings.model_dump(), "amqp_prefix": topology.prefix,
                                           "max_tenant_backlog": 3}))
        client = await aiohttp_client(app, headers=keys.headers("write"))
        await wait_for(lambda: _ready(client), 10, "ingest to become ready")
        return client

    busy, quiet = await ingest_for("busy"), await ingest_for("quiet")
    products = [{**GOOD, "id": f"tb-{unique}-{i}"} for i in range(3)]
    assert (await busy.post("/v1/products", json=products)).status == 202  # 3 pending now

    async def refused():
        response = await busy.post("/v1/products", json={**GOOD, "id": f"tb-{unique}-more"})
        return response if response.status == 429 else None

    response = await wait_for(refused, 5, "the busy tenant's write to be refused")
    body = await response.json()
    assert body["error"]["code"] == "tenant_backlog_full" and int(response.headers["Retry-After"]) > 0
    assert (await quiet.post("/v1/products", json={**GOOD, "id": f"tq-{unique}"})).status == 202
