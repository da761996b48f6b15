"""SIGTERM of an HTTP service under load: it stops accepting, answers what is in flight, exits 0;
every write it answered 202 is in the queue, and no request hangs."""
import asyncio
import tempfile
import uuid
from pathlib import Path

import aio_pika
import aiohttp
import pytest

from shared import localpg
from shared.amqp import Topology
from tests.conftest import _delete_topology
from tests.processes import spawn, wait_ready
from tools.chaos.load import catalogue

pytestmark = pytest.mark.e2e


LIMITS = {"RATE_LIMIT_PER_S": "100000", "RATE_LIMIT_BURST": "100000"}  # the load, not the rate limit


async def hammer(url: str, make_request, stop: asyncio.Event, headers: dict, clients: int = 8) -> dict:
    """Send requests from `clients` loops until `stop`; count answers by status and collect 202 ids."""
    seen = {"statuses": {}, "ids": [], "refused": 0}

    async def loop(session, n):
        i = 0
        while not stop.is_set():
            i += 1
            method, path, body = make_request(n, i)
            try:
                async with asyncio.timeout(10):
                    async with session.request(method, f"{url}{path}", json=body) as response:
                        payload = await response.json()
                        seen["statuses"][response.status] = seen["statuses"].get(response.status, 0) + 1
                        if response.status == 202:
                            seen["ids"] += payload["ids"]
            except TimeoutError:
                raise AssertionError(f"{method} {path} hung while the service was stopping") from None
            except aiohttp.ClientConnectionError:
                seen["refused"] += 1  # no longer accepting: fine, the client knows it was not taken
                await asyncio.sleep(0.05)

    async with aiohttp.ClientSession(headers=headers) as session:
        await asyncio.gather(*(loop(session, n) for n in range(clients)))
    return seen


async def test_ingest_sigterm_under_load_exits_0_and_loses_nothing_accepted(database_url, amqp_url, tenant_keys):
    prefix = f"test-term-{uuid.uuid4().hex[:8]}"
    port = localpg.free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="recommender-sigterm-"))
    ingest = spawn("ingest", "services.ingest", {"DATABASE_URL": database_url, "AMQP_URL": amqp_url,
                                                 "AMQP_PREFIX": prefix, "PORT": str(port), **LIMITS},
                   log_dir, f"http://127.0.0.1:{port}/health/ready")
    products = catalogue(prefix, 4000)
    try:
        wait_ready(ingest)
        stop = asyncio.Event()

        def request(n, i):
            start = ((n * 1000 + i) * 5) % len(products)
            return "POST", "/v1/products", products[start:start + 5]

        load = asyncio.create_task(hammer(f"http://127.0.0.1:{port}", request, stop, tenant_keys.headers("write")))
        await asyncio.sleep(2)  # under load
        ingest.popen.send_signal(15)
        code = await asyncio.to_thread(ingest.popen.wait, 30)
        stop.set()
        seen = await load
    finally:
        ingest.terminate()
    assert code == 0, ingest.log()[-2000:]
    assert seen["statuses"].get(202, 0) > 10, seen["statuses"]
    assert set(seen["statuses"]) <= {202, 503}, seen["statuses"]
    queued = await queued_ids(amqp_url, Topology(prefix))
    await _delete_topology(amqp_url, Topology(prefix))
    assert set(seen["ids"]) <= queued, f"{len(set(seen['ids']) - queued)} accepted products are not in the queue"


async def test_api_sigterm_under_load_exits_0_and_answers_what_it_took(database_url, tenant_keys):
    port = localpg.free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="recommender-sigterm-"))
    api = spawn("api", "services.api", {"DATABASE_URL": database_url, "PORT": str(port), **LIMITS},
                log_dir, f"http://127.0.0.1:{port}/health/ready")
    try:
        wait_ready(api)
        stop = asyncio.Event()
        load = asyncio.create_task(hammer(f"http://127.0.0.1:{port}", lambda n, i: ("GET", "/v1/products", None),
                                          stop, tenant_keys.headers()))
        await asyncio.sleep(2)
        api.popen.send_signal(15)
        code = await asyncio.to_thread(api.popen.wait, 30)
        stop.set()
        seen = await load
    finally:
        api.terminate()
    assert code == 0, api.log()[-2000:]
    assert seen["statuses"].get(200, 0) > 10 and set(seen["statuses"]) <= {200, 503}, seen["statuses"]


async def queued_ids(amqp_url: str, topology: Topology) -> set[str]:
    from shared.schemas import ProductMessage

    connection = await aio_pika.connect(amqp_url)
    ids = set()
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(topology.queue)
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            ids.add(ProductMessage.model_validate_json(message.body).product_id)
    return ids
