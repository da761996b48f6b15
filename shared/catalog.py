"""Writes to the catalogue: versioned product upserts, tombstones and vectors.

Every write carries the version the ingest service gave it; a write only applies when its version
is at least the stored one, so the latest accepted write wins whatever order workers process them in.
Re-applying the same version is harmless (at-least-once delivery).
"""
import json

import asyncpg
import numpy as np

from shared.schemas import ProductIn, content_hash

UPSERT_PRODUCT = """
INSERT INTO products AS p (tenant_id, id, title, description, genres, year, metadata, content_hash, version)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)
ON CONFLICT (tenant_id, id) DO UPDATE SET
    title = EXCLUDED.title, description = EXCLUDED.description, genres = EXCLUDED.genres,
    year = EXCLUDED.year, metadata = EXCLUDED.metadata, content_hash = EXCLUDED.content_hash,
    version = EXCLUDED.version, deleted = false, updated_at = now()
WHERE p.version <= EXCLUDED.version
RETURNING id
"""

TOMBSTONE_PRODUCT = """
INSERT INTO products AS p (tenant_id, id, version, deleted) VALUES ($1, $2, $3, true)
ON CONFLICT (tenant_id, id) DO UPDATE SET
    title = '', description = '', genres = '{}', year = NULL, metadata = '{}', content_hash = '',
    version = EXCLUDED.version, deleted = true, updated_at = now()
WHERE p.version <= EXCLUDED.version
RETURNING id
"""

UPSERT_VECTOR = """
INSERT INTO product_vectors (tenant_id, product_id, model, content_hash, embedding)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (tenant_id, product_id, model) DO UPDATE SET
    content_hash = EXCLUDED.content_hash, embedding = EXCLUDED.embedding, embedded_at = now(),
    writes = product_vectors.writes + 1
"""


def product_args(tenant_id: str, product: ProductIn, version: int) -> tuple:
    return (
        tenant_id,
        product.id,
        product.title,
        product.description,
        product.genres,
        product.year,
        json.dumps(product.metadata),
        content_hash(product.title, product.description),
        version,
    )


async def upsert_product(conn: asyncpg.Connection, tenant_id: str, product: ProductIn, version: int) -> bool:
    """Write the product unless a newer version is stored; True when it applied."""
    return await conn.fetchval(UPSERT_PRODUCT, *product_args(tenant_id, product, version)) is not None


async def upsert_products(conn: asyncpg.Connection, tenant_id: str, products: list[tuple[ProductIn, int]]) -> None:
    """Many versioned upserts in one round trip (no per-row result)."""
    await conn.executemany(UPSERT_PRODUCT, [product_args(tenant_id, p, v) for p, v in products])


async def tombstone_product(conn: asyncpg.Connection, tenant_id: str, product_id: str, version: int) -> bool:
    """Mark the product deleted and drop its vectors unless a newer version is stored."""
    applied = await conn.fetchval(TOMBSTONE_PRODUCT, tenant_id, product_id, version) is not None
    if applied:
        await conn.execute(
            "DELETE FROM product_vectors WHERE tenant_id = $1 AND product_id = $2", tenant_id, product_id
        )
    return applied


async def store_vector(
    conn: asyncpg.Connection, tenant_id: str, product_id: str, model: str, digest: str, vector: np.ndarray
) -> None:
    await conn.execute(UPSERT_VECTOR, tenant_id, product_id, model, digest, vector)


async def known_state(
    conn: asyncpg.Connection, tenant_id: str, model: str, product_ids: list[str]
) -> dict[str, tuple[int, str | None]]:
    """product id -> (stored version, content hash of its stored vector or None)."""
    rows = await conn.fetch(
        "SELECT p.id, p.version, v.content_hash AS vector_hash FROM products p"
        " LEFT JOIN product_vectors v ON v.tenant_id = p.tenant_id AND v.product_id = p.id AND v.model = $2"
        " WHERE p.tenant_id = $1 AND p.id = ANY($3::text[])",
        tenant_id,
        model,
        product_ids,
    )
    return {row["id"]: (row["version"], row["vector_hash"]) for row in rows}


async def pending_count(conn: asyncpg.Connection | asyncpg.Pool, tenant_id: str, model: str) -> int:
    """The tenant's live products still waiting for a vector of their current text (neither
    embedded nor dead-lettered: what `embedding_status = 'pending'` means)."""
    return await conn.fetchval(
        "SELECT count(*) FROM products p WHERE p.tenant_id = $1 AND NOT p.deleted"
        " AND NOT EXISTS (SELECT 1 FROM product_vectors v WHERE v.tenant_id = p.tenant_id AND v.product_id = p.id"
        "                 AND v.model = $2 AND v.content_hash = p.content_hash)"
        " AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.tenant_id = p.tenant_id AND d.product_id = p.id"
        "                 AND d.version >= p.version)",
        tenant_id,
        model,
    )


async def live_count(pool: asyncpg.Pool, tenant_id: str, product_ids: list[str]) -> tuple[int, int]:
    """(live products of the tenant, how many of `product_ids` are among them)."""
    row = await pool.fetchrow(
        "SELECT count(*) AS live, count(*) FILTER (WHERE id = ANY($2::text[])) AS known FROM products"
        " WHERE tenant_id = $1 AND NOT deleted",
        tenant_id, product_ids,
    )
    return row["live"], row["known"]
