"""Storing interactions: straight into PostgreSQL, so a 2xx means durable and visible at once."""
from datetime import datetime, timezone

import asyncpg

from shared.schemas import InteractionIn

INSERT_INTERACTIONS = """
INSERT INTO interactions (tenant_id, user_id, product_id, type, value, occurred_at, event_id)
SELECT $1, $2, e.product_id, e.type, e.value, e.occurred_at, e.event_id
FROM unnest($3::text[], $4::text[], $5::real[], $6::timestamptz[], $7::text[])
    AS e(product_id, type, value, occurred_at, event_id)
ON CONFLICT (tenant_id, event_id) WHERE event_id IS NOT NULL DO NOTHING
"""


async def unknown_products(conn: asyncpg.Connection, tenant_id: str, product_ids: list[str]) -> set[str]:
    """The ids among `product_ids` that are not live products of the tenant."""
    rows = await conn.fetch(
        "SELECT id FROM products WHERE tenant_id = $1 AND id = ANY($2::text[]) AND NOT deleted",
        tenant_id,
        product_ids,
    )
    return set(product_ids) - {row["id"] for row in rows}


async def ensure_user(conn: asyncpg.Connection, tenant_id: str, user_id: str) -> None:
    await conn.execute(
        "INSERT INTO users (tenant_id, id) VALUES ($1, $2) ON CONFLICT DO NOTHING", tenant_id, user_id
    )


async def store(conn: asyncpg.Connection, tenant_id: str, user_id: str, events: list[InteractionIn]) -> int:
    """Insert the events (the caller holds a transaction); return how many were new."""
    now = datetime.now(timezone.utc)
    await ensure_user(conn, tenant_id, user_id)
    status = await conn.execute(
        INSERT_INTERACTIONS,
        tenant_id,
        user_id,
        [e.product_id for e in events],
        [e.type for e in events],
        [e.value for e in events],
        [e.occurred_at or now for e in events],
        [e.event_id for e in events],
    )
    return int(status.split()[-1])
