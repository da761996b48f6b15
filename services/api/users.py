"""Reading users and their histories (the web page's user picker)."""
import asyncpg


async def list_users(pool: asyncpg.Pool, tenant_id: str, limit: int) -> list[dict]:
    rows = await pool.fetch(
        "SELECT u.id, count(i.id) AS interactions FROM users u"
        " LEFT JOIN interactions i ON i.tenant_id = u.tenant_id AND i.user_id = u.id"
        " WHERE u.tenant_id = $1 GROUP BY u.id ORDER BY u.id LIMIT $2",
        tenant_id,
        limit,
    )
    return [dict(row) for row in rows]


async def interactions(pool: asyncpg.Pool, tenant_id: str, user_id: str, limit: int) -> list[dict] | None:
    """The user's newest interactions with the products' titles; None for an unknown user."""
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2", tenant_id, user_id):
            return None
        rows = await conn.fetch(
            "SELECT i.product_id, p.title, i.type, i.value, i.occurred_at FROM interactions i"
            " LEFT JOIN products p ON p.tenant_id = i.tenant_id AND p.id = i.product_id"
            " WHERE i.tenant_id = $1 AND i.user_id = $2 ORDER BY i.occurred_at DESC, i.id DESC LIMIT $3",
            tenant_id,
            user_id,
            limit,
        )
    return [{**dict(row), "occurred_at": row["occurred_at"].isoformat()} for row in rows]
