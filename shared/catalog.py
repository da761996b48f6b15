"""Writes to the catalogue: versioned product upserts, tombstones and vectors.

Every write carries the version the ingest service gave it; a write only applies when its version
is at least the stored one, so the latest accepted write wins whatever order workers process them in.
Re-applying the same version is harmless (at-least-once delivery).
"""
import json

import asyncpg
import numpy as np
from pgvector import Vector

from shared.schemas import ProductIn, content_hash

UPSERT_PRODUCT = """
INSERT INTO products AS p (tenant_id, id, title, description, genres, year, metadata, content_hash, version)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)
ON CONFLICT (tenant_id, id) DO UPDATE SET
    title = EXCLUDED.title, description = EXCLUDED.description, genres = EXCLUDED.genres,
    year = EXCLUDED.year, metadata = EXCLUDED.metadata, content_hash = EXCLUDED.content_hash,
    version = EXCLUDED.version, deleted = false, updated_at = now()
WHERE p.version <= EXCLUDED.version
"""

# Many versioned writes (upserts and tombstones) in one statement, in the order given (callers sort
# by key: a fixed lock order across workers). A tombstone blanks the product and keeps its version.
# Genres travel as JSON arrays: an array of arrays would not unnest row by row.
WRITE_PRODUCTS = """
INSERT INTO products AS p (tenant_id, id, title, description, genres, year, metadata, content_hash, version, deleted)
SELECT w.tenant_id, w.id, w.title, w.description, ARRAY(SELECT jsonb_array_elements_text(w.genres)), w.year,
       w.metadata, w.content_hash, w.version, w.deleted
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::integer[], $7::jsonb[], $8::text[],
            $9::bigint[], $10::boolean[])
     AS w(tenant_id, id, title, description, genres, year, metadata, content_hash, version, deleted)
ON CONFLICT (tenant_id, id) DO UPDATE SET
    title = EXCLUDED.title, description = EXCLUDED.description, genres = EXCLUDED.genres,
    year = EXCLUDED.year, metadata = EXCLUDED.metadata, content_hash = EXCLUDED.content_hash,
    version = EXCLUDED.version, deleted = EXCLUDED.deleted, updated_at = now()
WHERE p.version <= EXCLUDED.version
RETURNING p.tenant_id, p.id, p.deleted
"""

DROP_VECTORS = """
DELETE FROM product_vectors v USING unnest($1::text[], $2::text[]) AS d(tenant_id, product_id)
WHERE v.tenant_id = d.tenant_id AND v.product_id = d.product_id
"""

WRITE_VECTORS = """
INSERT INTO product_vectors (tenant_id, product_id, model, content_hash, embedding)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::vector[])
ON CONFLICT (tenant_id, product_id, model) DO UPDATE SET
    content_hash = EXCLUDED.content_hash, embedding = EXCLUDED.embedding, embedded_at = now(),
    writes = product_vectors.writes + 1
"""

VECTOR_HASHES = """
SELECT k.tenant_id, k.product_id, k.model, v.content_hash
FROM unnest($1::text[], $2::text[], $3::text[]) AS k(tenant_id, product_id, model)
LEFT JOIN product_vectors v ON v.tenant_id = k.tenant_id AND v.product_id = k.product_id AND v.model = k.model
"""

# (tenant id, product id, the product or None for a delete, version)
Write = tuple[str, str, ProductIn | None, int]
# (tenant id, product id, model, content hash of the embedded text, vector)
VectorRow = tuple[str, str, str, str, np.ndarray]


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


async def upsert_products(conn: asyncpg.Connection, tenant_id: str, products: list[tuple[ProductIn, int]]) -> None:
    """Many versioned upserts in one round trip (no per-row result)."""
    await conn.executemany(UPSERT_PRODUCT, [product_args(tenant_id, p, v) for p, v in products])


async def write_products(conn: asyncpg.Connection, writes: list[Write]) -> set[tuple[str, str]]:
    """Apply upserts and deletes (at most one per product) unless a newer version is stored; a
    delete that applies drops the product's vectors. Returns the (tenant id, product id) applied."""
    if not writes:
        return set()
    columns: list[list] = [[] for _ in range(10)]
    for tenant_id, product_id, product, version in writes:
        row = (tenant_id, product_id, "", "", "[]", None, "{}", "", version, True) if product is None else (
            tenant_id, product_id, product.title, product.description, json.dumps(product.genres), product.year,
            json.dumps(product.metadata), content_hash(product.title, product.description), version, False)
        for column, value in zip(columns, row):
            column.append(value)
    applied = await conn.fetch(WRITE_PRODUCTS, *columns)
    deleted = [(r["tenant_id"], r["id"]) for r in applied if r["deleted"]]
    if deleted:
        await conn.execute(DROP_VECTORS, [k[0] for k in deleted], [k[1] for k in deleted])
    return {(r["tenant_id"], r["id"]) for r in applied}


async def tombstone_product(conn: asyncpg.Connection, tenant_id: str, product_id: str, version: int) -> bool:
    """Mark the product deleted and drop its vectors unless a newer version is stored."""
    return bool(await write_products(conn, [(tenant_id, product_id, None, version)]))


async def write_vectors(conn: asyncpg.Connection, rows: list[VectorRow]) -> None:
    """Store vectors (at most one per product and model) in one statement."""
    if rows:
        await conn.execute(WRITE_VECTORS, *([row[i] for row in rows] for i in range(4)),
                           [Vector(row[4]) for row in rows])


async def store_vector(
    conn: asyncpg.Connection, tenant_id: str, product_id: str, model: str, digest: str, vector: np.ndarray
) -> None:
    await write_vectors(conn, [(tenant_id, product_id, model, digest, vector)])


async def vector_hashes(conn: asyncpg.Connection,
                        keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], str | None]:
    """(tenant id, product id, model) -> content hash of its stored vector, None without one."""
    if not keys:
        return {}
    rows = await conn.fetch(VECTOR_HASHES, *([key[i] for key in keys] for i in range(3)))
    return {(r["tenant_id"], r["product_id"], r["model"]): r["content_hash"] for r in rows}


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
