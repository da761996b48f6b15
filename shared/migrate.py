"""Versioned SQL migrations: `python -m shared.migrate` (or `make migrate`).

Each file in `migrations/` is applied once, in name order, inside a transaction, and recorded in
`schema_migrations`. Re-running is a no-op; concurrent runs serialise on an advisory lock.
"""
import argparse
import asyncio
import logging
from pathlib import Path

import asyncpg

from shared.logs import configure_logging, redact
from shared.settings import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
LOCK_KEY = 384_2024  # any constant shared by every migrate run

log = logging.getLogger(__name__)


async def migrate(database_url: str) -> list[str]:
    """Apply pending migrations; return the names applied now."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations")}
        applied = []
        for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
            if path.name in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", path.name)
            log.info("applied migration %s", path.name)
            applied.append(path.name)
        return applied
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="defaults to DATABASE_URL")
    args = parser.parse_args()
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    url = args.database_url or settings.database_url
    applied = asyncio.run(migrate(url))
    log.info("database %s: %d migration(s) applied", redact(url), len(applied))


if __name__ == "__main__":
    main()
