"""The asyncpg pool (with the pgvector codec) and start-up checks of the schema."""
import asyncio

import asyncpg
from pgvector.asyncpg import register_vector

from shared.errors import Unavailable
from shared.settings import Settings


async def _init_connection(conn: asyncpg.Connection) -> None:
    await register_vector(conn)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A released connection keeps its session as it is: no reset statement."""


async def create_pool(settings: Settings, server_settings: dict[str, str] | None = None,
                      keep_session: bool = False) -> asyncpg.Pool:
    """`server_settings`: session settings every connection starts with (e.g. `hnsw.ef_search`).
    `keep_session`: for users that leave no session state behind (no SET, LISTEN, cursors or
    session locks, as the api's queries): a released connection skips asyncpg's reset statement
    (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL), a round trip per checkout; asyncpg still
    rolls back a transaction left open."""
    return await asyncpg.create_pool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        init=_init_connection,
        server_settings=server_settings,
        timeout=settings.db_connect_timeout_s,
        command_timeout=settings.db_command_timeout_s,
        reset=_keep_session if keep_session else None,
    )


def pool_in_use(pool: asyncpg.Pool) -> int:
    return pool.get_size() - pool.get_idle_size()


class Database:
    """A pool opened in the background: the service starts while PostgreSQL is still down."""

    def __init__(self, settings: Settings, retry_s: float = 2.0, server_settings: dict[str, str] | None = None,
                 keep_session: bool = False):
        self.settings = settings
        self.server_settings = server_settings
        self.keep_session = keep_session
        self.retry_s = retry_s
        self.pool: asyncpg.Pool | None = None
        self._last_error = "connecting"
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect())

    async def _connect(self) -> None:
        while self.pool is None:
            try:
                self.pool = await create_pool(self.settings, self.server_settings, self.keep_session)
            except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
                self._last_error = f"database unreachable: {exc or type(exc).__name__}"
                await asyncio.sleep(self.retry_s)

    async def problem(self) -> str | None:
        if self.pool is None:
            return self._last_error
        try:
            await asyncio.wait_for(self.pool.fetchval("SELECT 1"), timeout=2)
        except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
            return f"database unreachable: {exc or type(exc).__name__}"
        return None

    def in_use(self) -> int:
        """Connections checked out of the pool now; 0 before it opened."""
        return 0 if self.pool is None else pool_in_use(self.pool)

    def require(self) -> asyncpg.Pool:
        """The pool, or a 503 for the client when it is not open yet."""
        if self.pool is None:
            raise Unavailable(self._last_error)
        return self.pool

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.pool is not None:
            await self.pool.close()
