"""The gateway bench's floor: each user's recorded statements run on PostgreSQL, the stored answer goes back."""
import asyncpg

from shared.settings import ApiSettings
from tests.waiting import wait_for
from tools.bench.floor import create_app


async def test_the_floor_runs_each_users_statements_and_sends_the_stored_answer(aiohttp_client, database_url, unique):
    table = f"floor_{unique}"
    conn = await asyncpg.connect(database_url)
    await conn.execute(f"CREATE TABLE {table} (user_id text, n int)")  # a name of this test's own
    insert = f"INSERT INTO {table} VALUES ($1, $2)"
    recorded = {
        "ada": ([("fetch", insert, ("ada", 1)), ("fetchrow", insert, ("ada", 2))], b'{"items": ["ada"]}'),
        "bo": ([("fetch", insert, ("bo", 3))], b'{"items": ["bo"]}'),
    }
    client = await aiohttp_client(create_app(recorded, ApiSettings(database_url=database_url, db_pool_max=2)))
    try:
        async def ready() -> bool:  # the pool opens in the background, as the api's
            return (await client.get("/health/ready")).status == 200

        await wait_for(ready, 30, "the floor's database pool", every_s=0.05)
        for user in ("ada", "bo", "ada"):
            response = await client.get(f"/v1/users/{user}/recommendations?limit=1")
            assert response.status == 200 and response.content_type == "application/json"
            assert await response.read() == recorded[user][1]
        ran = await conn.fetch(f"SELECT user_id, n FROM {table} ORDER BY n, user_id")
        assert [tuple(row) for row in ran] == [("ada", 1), ("ada", 1), ("ada", 2), ("ada", 2), ("bo", 3)]
        assert (await client.get("/health/ready")).status == 200
    finally:
        await conn.execute(f"DROP TABLE {table}")
        await conn.close()
