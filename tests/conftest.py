"""Session fixtures: a real PostgreSQL + pgvector and a real RabbitMQ.

PostgreSQL: `DATABASE_URL` when given, else an embedded server on a free port with a throwaway
data directory, stopped at the end of the session (also when tests fail). RabbitMQ: `AMQP_URL`
(default the local broker). Every session uses its own queue prefix, deleted at the end.
API keys: `tenant_keys` is a read and a write key of a tenant made for this session; a test that
changes tenant settings or needs a clean catalogue makes its own with `new_tenant`.
"""
import asyncio
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from shared.amqp import Topology, delete_topology
from shared.db import create_pool
from shared.keys import create_key
from shared.migrate import migrate
from shared.settings import Settings


@pytest.fixture(scope="session")
def database_url() -> str:
    if url := os.environ.get("DATABASE_URL"):
        asyncio.run(migrate(url))
        yield url
        return
    from shared import localpg

    folder = Path(tempfile.mkdtemp(prefix="recommender-test-pg-"))
    pgdata = folder / "data"
    url = localpg.start(pgdata, localpg.free_port())
    try:
        asyncio.run(migrate(url))
        yield url
    finally:
        localpg.stop(pgdata)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def amqp_url() -> str:
    return os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture(scope="session")
def amqp_prefix(amqp_url: str) -> str:
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    yield prefix
    asyncio.run(delete_topology(amqp_url, Topology(prefix)))


_delete_topology = delete_topology  # the name the tests import (the function lives in shared/amqp.py)


@pytest.fixture(scope="session")
def settings(database_url: str, amqp_url: str, amqp_prefix: str) -> Settings:
    return Settings(database_url=database_url, amqp_url=amqp_url, amqp_prefix=amqp_prefix, db_pool_max=4)


@pytest.fixture(scope="session")
async def pool(settings: Settings) -> asyncpg.Pool:
    pool = await create_pool(settings)
    yield pool
    await pool.close()


@pytest.fixture
def unique() -> str:
    """A short unique token for ids, so tests never need to truncate shared tables."""
    return uuid.uuid4().hex[:10]


@dataclass(frozen=True)
class TenantKeys:
    tenant: str
    read: str
    write: str

    def headers(self, role: str = "read") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.read if role == 'read' else self.write}"}


async def new_tenant(pool: asyncpg.Pool, prefix: str = "t") -> TenantKeys:
    """A tenant of its own (a unique name) with a read and a write key."""
    tenant = f"{prefix}-{uuid.uuid4().hex[:8]}"
    async with pool.acquire() as conn:
        _, read = await create_key(conn, tenant, "read", "tests")
        _, write = await create_key(conn, tenant, "write", "tests")
    return TenantKeys(tenant, read, write)


@pytest.fixture(scope="session")
async def tenant_keys(pool: asyncpg.Pool) -> TenantKeys:
    """This session's tenant: tests only add to it (unique ids), never change its settings."""
    return await new_tenant(pool, "session")
