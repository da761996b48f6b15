"""A tenant of its own with the demo catalogue, embedded by the stack's workers; ingest and api run
in-process on real ports (the api's page carries the tenant's read key); the tenant's keys keep
its rankings to its own catalogue."""
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from services.api.app import create_app as create_api
from services.ingest.app import create_app as create_ingest
from shared.settings import ApiSettings, IngestSettings
from tests.conftest import TenantKeys, new_tenant
from tests.waiting import wait_for
from tools.demo import demo_data, load_demo


@dataclass
class Tenant:
    id: str
    keys: TenantKeys
    ingest_url: str
    api_url: str
    session: aiohttp.ClientSession
    titles: dict  # title -> product id
    movies: dict  # product id -> movie

    async def get(self, path: str, **params) -> tuple[int, object]:
        async with self.session.get(f"{self.api_url}{path}", params=params, headers=self.keys.headers()) as response:
            return response.status, await response.json()

    async def post(self, base: str, path: str, body: object) -> tuple[int, object]:
        role = "write" if base == self.ingest_url else "read"
        async with self.session.post(f"{base}{path}", json=body, headers=self.keys.headers(role)) as response:
            return response.status, await response.json()

    def genres(self, item: dict) -> list[str]:
        return item["product"]["genres"]


@asynccontextmanager
async def tenant_services(pool, database_url: str, amqp_url: str, amqp_prefix: str, prefix: str):
    """A new tenant with keys, and an ingest and api in-process, ready; yields (keys, ingest_url, api_url)."""
    keys = await new_tenant(pool, prefix)
    common = dict(database_url=database_url, amqp_url=amqp_url, amqp_prefix=amqp_prefix, db_pool_max=4,
                  rate_limit_per_s=5000, rate_limit_burst=5000)
    ingest = TestServer(create_ingest(IngestSettings(**common)))
    api = TestServer(create_api(ApiSettings(**common, page_key=keys.read)))
    await ingest.start_server()
    await api.start_server()
    urls = str(ingest.make_url("")).rstrip("/"), str(api.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession() as session:
            for url in urls:  # broker and database connect in the background
                await wait_for(lambda: _ready(session, url), 30, f"{url} to become ready")
        yield keys, *urls
    finally:
        await api.close()
        await ingest.close()


async def _ready(session: aiohttp.ClientSession, url: str) -> bool:
    async with session.get(f"{url}/health/ready") as response:
        return response.status == 200


@pytest.fixture(scope="session")
async def demo_tenant(stack, pool, database_url, amqp_url, amqp_prefix, unique_session) -> Tenant:
    async with tenant_services(pool, database_url, amqp_url, amqp_prefix, "rec") as (keys, ingest_url, api_url):
        counts = await load_demo(ingest_url, api_url, keys.write, wait_s=180)
        assert counts["embedded"] == counts["products"], counts
        data = demo_data()
        async with aiohttp.ClientSession() as session:
            yield Tenant(keys.tenant, keys, ingest_url, api_url, session, {m["title"]: m["id"] for m in data["movies"]},
                         {m["id"]: m for m in data["movies"]})


@pytest.fixture(scope="session")
def unique_session() -> str:
    import uuid

    return uuid.uuid4().hex[:8]
