"""Dead letters a person can act on: listed, requeued onto the real queue, dropped; the product
shows `failed` with the reason until then."""
import argparse
import uuid

import aio_pika
import pytest

from services.api.app import create_app as create_api
from shared import catalog, dead_letters
from shared.amqp import Topology
from shared.dead_letters import DeadLetter
from shared.schemas import ProductIn, ProductMessage
from shared.settings import ApiSettings, Settings
from tests.conftest import _delete_topology
from tests.waiting import wait_for
from tools import dead_letters as cli

pytestmark = pytest.mark.integration


@pytest.fixture
async def topology(amqp_url):
    topology = Topology(f"test-dl-{uuid.uuid4().hex[:8]}")
    yield topology
    await _delete_topology(amqp_url, topology)


async def failed_product(pool, tenant: str, pid: str, reason: str) -> DeadLetter:
    product = ProductIn(id=pid, title=f"Title {pid}", description="Text that could not be embedded.")
    async with pool.acquire() as conn:
        await catalog.upsert_products(conn, tenant, [(product, 7)])
    message = ProductMessage(type="product.upsert", tenant_id=tenant, product_id=pid, version=7, product=product)
    row = DeadLetter(message.message_id, tenant, pid, 7, message.model_dump_json().encode(), reason, 5)
    await dead_letters.record(pool, [row])
    return row


def args(*argv: str) -> argparse.Namespace:
    return cli._parser().parse_args(list(argv))


async def test_a_dead_lettered_product_shows_failed_with_the_reason(aiohttp_client, settings, pool, unique, tenant_keys):
    await failed_product(pool, tenant_keys.tenant, f"dl-{unique}", "still failing after 5 attempts: boom")
    client = await aiohttp_client(create_api(ApiSettings(**settings.model_dump())), headers=tenant_keys.headers())
    await wait_for(lambda: _ok(client, "/health/ready"), 10, "the api to become ready")
    body = await (await client.get(f"/v1/products/dl-{unique}")).json()
    assert body["embedding_status"] == "failed"
    assert body["embedding_error"] == "still failing after 5 attempts: boom"


async def test_list_requeue_and_drop(settings, pool, amqp_url, topology, unique, capsys):
    tenant = f"t-{unique}"
    await pool.execute("INSERT INTO tenants (id) VALUES ($1)", tenant)
    first = await failed_product(pool, tenant, f"a-{unique}", "reason one")
    second = await failed_product(pool, tenant, f"b-{unique}", "reason two")
    cli_settings = Settings(database_url=settings.database_url, amqp_url=amqp_url, amqp_prefix=topology.prefix)

    assert await cli.run(args("list", "--tenant", tenant, "--json"), cli_settings) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line]
    assert [f"a-{unique}" in listed[0], f"b-{unique}" in listed[1], len(listed)] == [True, True, 2]
    ids = [row.id for row in await dead_letters.list_(pool, tenant)]

    assert await cli.run(args("requeue", str(ids[0])), cli_settings) == 0
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(topology.queue)
        message = await wait_for(lambda: queue.get(fail=False, no_ack=True), 5, "the requeued message")
    assert message.body == first.body and message.message_id == first.message_id

    assert await cli.run(args("drop", "--all", "--tenant", tenant), cli_settings) == 0
    assert await dead_letters.list_(pool, tenant) == []
    assert "dropped 1 dead letter(s)" in capsys.readouterr().out  # the requeued one was already gone
    body = await pool.fetchval("SELECT count(*) FROM dead_letters WHERE message_id = $1", second.message_id)
    assert body == 0
    with pytest.raises(SystemExit, match="no dead letter with id"):
        await cli.run(args("drop", str(ids[1])), cli_settings)


async def _ok(client, path: str) -> bool:
    return (await client.get(path)).status == 200
