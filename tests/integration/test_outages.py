"""Every HTTP service while a dependency it needs is down: 503 with Retry-After (never a 500, never
a wait over 5 s), and back to normal within 5 s of the dependency's return, without a restart.

A private PostgreSQL and a private RabbitMQ node are stopped and started here; the shared broker
is never touched. Keys are checked against the database: while it is down, every keyed route of
ingest and api answers 503 once the key's cache entry (KEY_CACHE_S) has expired."""
import asyncio
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.api.app import create_app as create_api
from services.ingest.app import create_app as create_ingest
from shared import localpg
from shared.keys import create_key
from shared.migrate import migrate
from shared.settings import ApiSettings, IngestSettings
from tests.conftest import _delete_topology
from tests.waiting import wait_for
from tools import rabbitnode

pytestmark = pytest.mark.integration

LIMIT_S = 5.0


@dataclass
class PrivatePostgres:
    pgdata: Path
    port: int
    url: str
    key: str  # a write key of a tenant in this database

    def stop(self) -> None:
        localpg.stop(self.pgdata)

    def start(self) -> None:
        localpg.start(self.pgdata, self.port)


@pytest.fixture(scope="module")
def private_pg():
    folder = Path(tempfile.mkdtemp(prefix="recommender-outage-pg-"))
    port = localpg.free_port()
    url = localpg.start(folder / "data", port)
    try:
        asyncio.run(migrate(url))
        yield PrivatePostgres(folder / "data", port, url, asyncio.run(_write_key(url)))
    finally:
        localpg.stop(folder / "data")
        shutil.rmtree(folder, ignore_errors=True)


async def _write_key(url: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return (await create_key(conn, "outage", "write", "tests"))[1]
    finally:
        await conn.close()


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def private_rabbit():
    if not rabbitnode.available():
        pytest.skip("rabbitmq-server is not installed: no private broker node to stop and start")
    folder = Path(tempfile.mkdtemp(prefix="recommender-outage-mq-"))
    node = rabbitnode.RabbitNode(folder)
    node.start()
    try:
        yield node
    finally:
        node.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def serve(app: web.Application):
    server = TestServer(app)
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as session:
        await wait_for(lambda: status_of(session, "GET", f"{base}/health/ready", expect=200), 30,
                       f"{base} to become ready")
    return server, base


async def status_of(session, method: str, url: str, expect: int | None = None, body=None):
    async with session.request(method, url, json=body) as response:
        return response.status == expect if expect is not None else response.status


async def call(session: aiohttp.ClientSession, method: str, url: str, body=None) -> tuple[int, dict, float]:
    """(status, headers, seconds); fails when the answer takes longer than LIMIT_S."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(LIMIT_S + 1):
            async with session.request(method, url, json=body) as response:
                await response.read()
                return response.status, dict(response.headers), time.monotonic() - started
    except TimeoutError:
        raise AssertionError(f"{method} {url} hung for more than {LIMIT_S}s while a dependency was down") from None


def every_route(app: web.Application) -> list[tuple[str, str]]:
    """(method, path) of each route, path parameters filled in; static files left out."""
    routes = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        if route.method == "HEAD" or "directory" in info:
            continue
        path = info.get("path") or info.get("formatter", "")
        for name in ("product_id", "user_id"):
            path = path.replace("{" + name + "}", "x")
        routes.append((route.method, path))
    return routes


async def assert_unavailable(session, base: str, routes: list[tuple[str, str]], needing: set[str],
                             bodies: dict | None = None) -> None:
    """No route answers 500 or hangs; every 503 says Retry-After; the routes in `needing` are 503.
    Bodies: `bodies["METHOD /path"]` (valid ones, so that validation passes), else {}."""
    answers = {}
    for method, path in routes:
        body = (bodies or {}).get(f"{method} {path}", {} if method != "GET" else None)
        status, headers, seconds = await call(session, method, f"{base}{path}", body)
        assert status != 500, f"{method} {path} answered 500"
        assert seconds <= LIMIT_S, f"{method} {path} took {seconds:.1f}s"
        if status == 503:
            assert int(headers["Retry-After"]) > 0, f"{method} {path}: 503 without Retry-After"
        answers[f"{method} {path}"] = status
    assert {key: answers[key] for key in needing} == {key: 503 for key in needing}, answers


async def wait_recovered(session, method: str, url: str, ok: int, body=None) -> float:
    started = time.monotonic()
    await wait_for(lambda: status_of(session, method, url, expect=ok, body=body), LIMIT_S,
                   f"{method} {url} to answer {ok} again after the dependency returned", every_s=0.2)
    return time.monotonic() - started


async def test_api_answers_503_while_the_database_is_down_and_recovers(private_pg):
    app = create_api(ApiSettings(database_url=private_pg.url, db_pool_max=2, key_cache_s=0))
    server, base = await serve(app)
    try:
        async with aiohttp.ClientSession(headers=bearer(private_pg.key)) as session:
            private_pg.stop()
            try:
                await assert_unavailable(session, base, every_route(app), {
                    "GET /v1/products", "GET /v1/products/x", "POST /v1/recommendations", "GET /v1/genres", "GET /v1/users",
                    "GET /v1/users/x/recommendations", "GET /v1/products/x/similar", "GET /api/products",
                    "GET /health/ready"}, {"POST /v1/recommendations": {"liked": ["x"]}})
            finally:
                private_pg.start()
            await wait_recovered(session, "GET", f"{base}/v1/products", 200)
            await wait_recovered(session, "GET", f"{base}/health/ready", 200)
    finally:
        await server.close()


async def test_ingest_answers_503_while_the_database_is_down_and_recovers(private_pg, amqp_url):
    prefix = f"test-outage-{uuid.uuid4().hex[:8]}"
    app = create_ingest(IngestSettings(database_url=private_pg.url, amqp_url=amqp_url, amqp_prefix=prefix,
                                       db_pool_max=2, key_cache_s=0))
    server, base = await serve(app)
    like = [{"product_id": "p-1", "type": "like"}]
    product = [{"id": "p-1", "title": "One", "description": "The first."}]
    try:
        async with aiohttp.ClientSession(headers=bearer(private_pg.key)) as session:
            private_pg.stop()
            try:
                # The key check (and the catalogue quota) need the database: writes of products too.
                await assert_unavailable(session, base, every_route(app), {
                    "POST /v1/products", "PUT /v1/products/x", "DELETE /v1/products/x",
                    "POST /v1/users/x/interactions", "POST /v1/orders", "GET /health/ready"}, {
                    "POST /v1/products": product, "PUT /v1/products/x": product[0] | {"id": "x"},
                    "POST /v1/users/x/interactions": like,
                    "POST /v1/orders": {"user_id": "u-1", "items": [{"product_id": "p-1"}]}})
            finally:
                private_pg.start()
            await wait_recovered(session, "GET", f"{base}/health/ready", 200)
            # No product p-1 in the catalogue: 422 means it answered.
            await wait_recovered(session, "POST", f"{base}/v1/users/u-1/interactions", 422, like)
    finally:
        await server.close()
        await _delete_topology(amqp_url, _topology(prefix))


async def test_ingest_answers_503_while_the_broker_is_down_and_recovers(settings, private_rabbit, tenant_keys):
    prefix = f"test-outage-{uuid.uuid4().hex[:8]}"
    app = create_ingest(IngestSettings(database_url=settings.database_url, amqp_url=private_rabbit.url,
                                       amqp_prefix=prefix, db_pool_max=2))
    server, base = await serve(app)
    product = [{"id": f"b-{prefix}", "title": "Broker test", "description": "Sent around a restart."}]
    try:
        async with aiohttp.ClientSession(headers=tenant_keys.headers("write")) as session:
            assert (await call(session, "POST", f"{base}/v1/products", product))[0] == 202
            private_rabbit.stop()
            try:
                await wait_for(lambda: status_of(session, "GET", f"{base}/health/ready", expect=503), LIMIT_S,
                               "readiness to notice the broker went away")
                await assert_unavailable(session, base, every_route(app), {
                    "POST /v1/products", "PUT /v1/products/x", "DELETE /v1/products/x", "GET /health/ready"}, {
                    "POST /v1/products": product, "PUT /v1/products/x": product[0] | {"id": "x"}})
            finally:
                private_rabbit.start()
            await wait_recovered(session, "POST", f"{base}/v1/products", 202, product)
    finally:
        await server.close()


def _topology(prefix: str):
    from shared.amqp import Topology

    return Topology(prefix)


async def test_embedder_health_answers_503_while_the_database_is_down_and_recovers(private_pg, amqp_url):
    from services.embedder.health import create_health_app
    from services.embedder.metrics import WorkerMetrics
    from shared.amqp import connect, declare
    from shared.db import create_pool
    from shared.settings import Settings

    prefix = f"test-outage-{uuid.uuid4().hex[:8]}"
    pool = await create_pool(Settings(database_url=private_pg.url, db_pool_max=2))
    connection = await connect(amqp_url)
    try:
        channel = await connection.channel()
        _, queue = await declare(channel, _topology(prefix))
        app = create_health_app(WorkerMetrics(), pool, channel, queue)
        server, base = await serve(app)
        try:
            async with aiohttp.ClientSession() as session:
                private_pg.stop()
                try:
                    await assert_unavailable(session, base, every_route(app), {"GET /health/ready"})
                    assert (await call(session, "GET", f"{base}/metrics"))[0] == 200
                finally:
                    private_pg.start()
                await wait_recovered(session, "GET", f"{base}/health/ready", 200)
        finally:
            await server.close()
    finally:
        await pool.close()
        await connection.close()
        await _delete_topology(amqp_url, _topology(prefix))


async def test_trainer_health_answers_503_while_the_database_is_down_and_recovers(private_pg):
    from services.trainer.__main__ import _serve_health
    from shared.db import Database
    from shared.settings import TrainerSettings

    settings = TrainerSettings(database_url=private_pg.url, host="127.0.0.1", health_port=localpg.free_port())
    database = Database(settings)
    database.start()
    runner = await _serve_health(settings, database)
    base = f"http://127.0.0.1:{settings.health_port}"
    try:
        async with aiohttp.ClientSession() as session:
            await wait_for(lambda: status_of(session, "GET", f"{base}/health/ready", expect=200), 30,
                           "the trainer to become ready")
            private_pg.stop()
            try:
                await assert_unavailable(session, base, [("GET", "/health/live"), ("GET", "/health/ready")],
                                         {"GET /health/ready"})
            finally:
                private_pg.start()
            await wait_recovered(session, "GET", f"{base}/health/ready", 200)
    finally:
        await runner.cleanup()
        await database.close()
