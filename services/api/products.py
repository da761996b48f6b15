"""Reading the catalogue: one product, many, browse and search."""
import json

import asyncpg

# embedding_status: 'ready' (a vector of the current content by the tenant's active model,
# shared.models; $2 is MODEL_NAME, the model of tenants that never switched), 'failed' (the current
# version was dead-lettered; embedding_error says why) or 'pending'.
PRODUCT_COLUMNS = """
    p.id, p.title, p.description, p.genres, p.year, p.metadata, p.version, p.created_at, p.updated_at,
    CASE WHEN EXISTS (
        SELECT 1 FROM product_vectors v
        WHERE v.tenant_id = p.tenant_id AND v.product_id = p.id AND v.content_hash = p.content_hash
          AND v.model = coalesce((SELECT m.active FROM tenant_models m WHERE m.tenant_id = p.tenant_id), $2)
    ) THEN 'ready' WHEN EXISTS (
        SELECT 1 FROM dead_letters d WHERE d.tenant_id = p.tenant_id AND d.product_id = p.id AND d.version >= p.version
    ) THEN 'failed' ELSE 'pending' END AS embedding_status,
    (SELECT d.reason FROM dead_letters d
     WHERE d.tenant_id = p.tenant_id AND d.product_id = p.id AND d.version >= p.version
     ORDER BY d.id DESC LIMIT 1) AS embedding_error
"""

BROWSE = f"""
SELECT {PRODUCT_COLUMNS}, lower(p.title) AS sort_title FROM products p
WHERE p.tenant_id = $1 AND NOT p.deleted
  AND ($3::text IS NULL OR strpos(lower(p.title), lower($3)) > 0)
  AND ($4::text IS NULL OR p.genres @> ARRAY[$4::text])
  AND ($5::text IS NULL OR (lower(p.title), p.id) > ($5, $6))
ORDER BY lower(p.title), p.id
LIMIT $7
"""


PRODUCT_KEYS = ("id", "title", "description", "genres", "year", "metadata", "version", "created_at", "updated_at",
                "embedding_status", "embedding_error")


def product_json(row: asyncpg.Record) -> dict:
    product = {key: row[key] for key in PRODUCT_KEYS}
    product["metadata"] = json.loads(product["metadata"])
    product["genres"] = list(product["genres"])
    for key in ("created_at", "updated_at"):
        product[key] = product[key].isoformat()
    return product


async def get_product(pool: asyncpg.Pool, tenant_id: str, model: str, product_id: str) -> dict | None:
    row = await pool.fetchrow(
        f"SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.tenant_id = $1 AND p.id = $3 AND NOT p.deleted",
        tenant_id,
        model,
        product_id,
    )
    return None if row is None else product_json(row)


async def get_products(conn: asyncpg.Connection, tenant_id: str, model: str, product_ids: list[str]) -> dict[str, dict]:
    """Live products by id (missing ones are left out)."""
    rows = await conn.fetch(
        f"SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.tenant_id = $1 AND p.id = ANY($3::text[]) AND NOT p.deleted",
        tenant_id,
        model,
        product_ids,
    )
    return {row["id"]: product_json(row) for row in rows}


async def browse(pool: asyncpg.Pool, tenant_id: str, model: str, query: str | None, genre: str | None,
                 after: tuple[str, str] | None, limit: int) -> tuple[list[dict], tuple[str, str] | None]:
    """Products by title (case-insensitive substring match), in title order; keyset pagination:
    returns the page and the key to continue after, or None at the end."""
    after_title, after_id = after or (None, None)
    rows = await pool.fetch(BROWSE, tenant_id, model, query, genre, after_title, after_id, limit + 1)
    page = rows[:limit]
    more = len(rows) > limit
    return [product_json(row) for row in page], ((page[-1]["sort_title"], page[-1]["id"]) if more else None)


async def genres(pool: asyncpg.Pool, tenant_id: str) -> list[dict]:
    rows = await pool.fetch(
        "SELECT g AS genre, count(*) AS products FROM products p, unnest(p.genres) AS g"
        " WHERE p.tenant_id = $1 AND NOT p.deleted GROUP BY g ORDER BY g",
        tenant_id,
    )
    return [dict(row) for row in rows]


async def list_all(pool: asyncpg.Pool, tenant_id: str, limit: int) -> list[dict]:
    """Live products in id order (the spike's list), with title, description and metadata."""
    rows = await pool.fetch(
        "SELECT id, title, description, metadata FROM products WHERE tenant_id = $1 AND NOT deleted"
        " ORDER BY id LIMIT $2",
        tenant_id,
        limit,
    )
    return [{**dict(row), "metadata": json.loads(row["metadata"])} for row in rows]
