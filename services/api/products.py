"""Reading the catalogue."""
import json

import asyncpg

PRODUCT_COLUMNS = """
    p.id, p.title, p.description, p.genres, p.year, p.metadata, p.version, p.created_at, p.updated_at,
    CASE WHEN EXISTS (
        SELECT 1 FROM product_vectors v
        WHERE v.tenant_id = p.tenant_id AND v.product_id = p.id AND v.model = $2 AND v.content_hash = p.content_hash
    ) THEN 'ready' ELSE 'pending' END AS embedding_status
"""


def product_json(row: asyncpg.Record) -> dict:
    product = dict(row)
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
