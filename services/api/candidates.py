"""The SQL behind recommendations: history, nearest neighbours from the HNSW index, popularity.

Nearest-neighbour queries run on connections set up by the api (`app.query_settings`): the
settings' `hnsw.ef_search` and pgvector's iterative index scans, so filters on genre, year and
exclusions still fill the list; when a filter is so selective that the index scan gives up
early, the same query runs exactly (no index) instead.
"""
from dataclasses import dataclass
import asyncpg
import numpy as np
from pgvector import Vector

from shared.interactions import History, popularity, training_weights

LIVE_POPULARITY_EVENTS = 50_000  # before a tenant's first training run: popularity of its newest interactions


@dataclass(frozen=True)
class Filters:
    genre: str | None = None
    year_from: int | None = None
    year_to: int | None = None
    exclude: tuple[str, ...] = ()


# $1 tenant, $2 model, $3 query vectors, $4 counts, $5 excluded ids, $6 genre, $7 year_from, $8 year_to
NEAREST = """
SELECT a.ord, c.product_id, c.embedding
FROM unnest($3::vector[], $4::int[]) WITH ORDINALITY AS a(query, n, ord)
CROSS JOIN LATERAL (
    SELECT v.product_id, v.embedding
    FROM product_vectors v JOIN products p ON p.tenant_id = v.tenant_id AND p.id = v.product_id
    WHERE v.tenant_id = $1 AND v.model = $2 AND NOT p.deleted AND v.product_id <> ALL($5::text[])
      AND ($6::text IS NULL OR p.genres @> ARRAY[$6::text])
      AND ($7::int IS NULL OR p.year >= $7) AND ($8::int IS NULL OR p.year <= $8)
    ORDER BY {order}
    LIMIT a.n
) c
"""
INDEXED_ORDER = "v.embedding <=> a.query"
EXACT_ORDER = "(v.embedding <=> a.query) + 0, v.product_id"  # not index-shaped: an exact scan

# Popularity as stored by the trainer's last run or, before a tenant's first run, as given in $8, $9.
STORED_POPULAR = """
SELECT p.id, coalesce(s.score, l.score, 0)::float8 AS score
FROM products p LEFT JOIN product_popularity s ON s.tenant_id = p.tenant_id AND s.product_id = p.id
     LEFT JOIN unnest($8::text[], $9::float8[]) AS l(product_id, score) ON l.product_id = p.id
WHERE p.tenant_id = $1 AND NOT p.deleted AND p.id <> ALL($2::text[])
  AND ($3::text IS NULL OR p.genres @> ARRAY[$3::text])
  AND ($4::int IS NULL OR p.year >= $4) AND ($5::int IS NULL OR p.year <= $5)
ORDER BY score DESC, p.id
LIMIT $6 OFFSET $7
"""

# The newest interactions as columns, for `History` (numpy decodes the arrays; no per-row objects).
# $1 tenant, $2 user (NULL: every user of the tenant), $3 how many
HISTORY = """
SELECT coalesce(array_agg(product_id), '{}') AS product_ids, coalesce(array_agg(type), '{}') AS types,
       coalesce(array_agg(coalesce(value, 'NaN')::float8), '{}') AS stars,
       coalesce(array_agg(extract(epoch FROM occurred_at)::float8), '{}') AS times_s
FROM (SELECT product_id, type, value, occurred_at FROM interactions
      WHERE tenant_id = $1 AND ($2::text IS NULL OR user_id = $2)
      ORDER BY occurred_at DESC, id DESC LIMIT $3) h
"""


def as_array(value: object) -> np.ndarray:
    """A stored embedding as a float32 array, whichever type the codec returns."""
    return np.asarray(value.to_numpy() if isinstance(value, Vector) else value, dtype=np.float32)


def _history(row: asyncpg.Record) -> History:
    return History(np.array(row["product_ids"], dtype=object), np.array(row["types"], dtype=object),
                   np.array(row["stars"], dtype=np.float64), np.array(row["times_s"], dtype=np.float64))


async def history(conn: asyncpg.Connection, tenant_id: str, user_id: str, max_events: int = 5000) -> History:
    """The user's newest interactions (an unknown user has none)."""
    return _history(await conn.fetchrow(HISTORY, tenant_id, user_id, max_events))


async def vectors(conn: asyncpg.Connection, tenant_id: str, model: str, product_ids: list[str]) -> dict[str, np.ndarray]:
    rows = await conn.fetch(
        "SELECT product_id, embedding FROM product_vectors WHERE tenant_id = $1 AND model = $2"
        " AND product_id = ANY($3::text[])",
        tenant_id,
        model,
        product_ids,
    )
    return {row["product_id"]: as_array(row["embedding"]) for row in rows}


async def nearest(conn: asyncpg.Connection, tenant_id: str, model: str, queries: list[np.ndarray], counts: list[int], excluded: list[str],
                  filters: Filters) -> list[list[tuple[str, np.ndarray]]]:
    """For each query vector, up to its count of nearest live products passing the filters."""
    args = [tenant_id, model, [Vector(q) for q in queries], counts, excluded,
            filters.genre, filters.year_from, filters.year_to]
    rows = await conn.fetch(NEAREST.format(order=INDEXED_ORDER), *args)
    found: list[list[tuple[str, np.ndarray]]] = [[] for _ in queries]
    for row in rows:
        found[row["ord"] - 1].append((row["product_id"], as_array(row["embedding"])))
    short = [i for i, items in enumerate(found) if len(items) < counts[i]]
    if short:  # the index scan stopped early (selective filters, small catalogue): ask exactly
        args[2] = [args[2][i] for i in short]
        args[3] = [counts[i] for i in short]
        for i in short:
            found[i] = []
        for row in await conn.fetch(NEAREST.format(order=EXACT_ORDER), *args):
            found[short[row["ord"] - 1]].append((row["product_id"], as_array(row["embedding"])))
    return found


async def popular(conn: asyncpg.Connection, tenant_id: str, excluded: list[str], filters: Filters,
                  offset: int, limit: int) -> list[tuple[str, float]]:
    """Live products by popularity (`shared.interactions.popularity`), then by id: every
    product has a place, so the list is never empty while products pass the filters."""
    if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM product_popularity WHERE tenant_id = $1)", tenant_id):
        rows = await conn.fetch(STORED_POPULAR, tenant_id, excluded, filters.genre, filters.year_from,
                                filters.year_to, limit, offset, [], [])
        return [(row["id"], row["score"]) for row in rows]
    live = _history(await conn.fetchrow(HISTORY, tenant_id, None, LIVE_POPULARITY_EVENTS))
    scores = popularity(live.product_ids, training_weights(live.types, live.stars), live.times_s)
    rows = await conn.fetch(STORED_POPULAR, tenant_id, excluded, filters.genre, filters.year_from,
                            filters.year_to, limit, offset, list(scores), list(scores.values()))
    return [(row["id"], row["score"]) for row in rows]
