"""Session fixtures: a real PostgreSQL + pgvector and a real RabbitMQ.

PostgreSQL: `DATABASE_URL` when given, else an embedded server on a free port with a throwaway
data directory, stopped at the end of the session (also when tests fail). RabbitMQ: `AMQP_URL`
(default the local broker). Every session uses its own queue prefix, deleted at the end.
"""
import asyncio
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import asyncpg
import pytest

from shared.amqp import Topology, delete_topology
from shared.db import create_pool
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
