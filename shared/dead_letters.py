"""Dead letters: messages the embedder gave up on, kept in PostgreSQL until a person acts.

The worker records one (with the reason and the attempts) and acks the message; the product's
current version then shows `embedding_status = 'failed'`. `recommender dead-letters` lists them,
requeues them (publishes the original message again, then forgets the dead letter) or drops them.
"""
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class DeadLetter:
    """A message given up on, with why."""

    message_id: str
    tenant_id: str | None
    product_id: str | None
    version: int | None
    body: bytes
    reason: str
    attempts: int
    id: int | None = None
    dead_lettered_at: datetime | None = None


RECORD = """
INSERT INTO dead_letters (message_id, tenant_id, product_id, version, body, reason, attempts)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (message_id) DO UPDATE SET
    reason = EXCLUDED.reason, attempts = EXCLUDED.attempts, dead_lettered_at = now()
"""

COLUMNS = "id, message_id, tenant_id, product_id, version, body, reason, attempts, dead_lettered_at"


async def record(conn: asyncpg.Connection | asyncpg.Pool, rows: list[DeadLetter]) -> None:
    await conn.executemany(RECORD, [(r.message_id, r.tenant_id, r.product_id, r.version, r.body, r.reason,
                                     r.attempts) for r in rows])


async def list_(conn: asyncpg.Connection | asyncpg.Pool, tenant_id: str | None = None,
                limit: int | None = None, ids: list[int] | None = None) -> list[DeadLetter]:
    """Oldest first; optionally one tenant's, only the given ids, at most `limit`."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM dead_letters"
        " WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2::bigint[] IS NULL OR id = ANY($2))"
        " ORDER BY id LIMIT $3",
        tenant_id, ids, limit,
    )
    return [DeadLetter(**dict(row)) for row in rows]


async def delete(conn: asyncpg.Connection | asyncpg.Pool, ids: list[int]) -> int:
    """Forget these dead letters; the number forgotten."""
    return len(await conn.fetch("DELETE FROM dead_letters WHERE id = ANY($1) RETURNING id", ids))


async def count(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    return await conn.fetchval("SELECT count(*) FROM dead_letters")
