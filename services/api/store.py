"""Every SQL statement of the recommendation request path, and the decoding of its rows.

A personal recommendation takes at most four round trips (README, "Round trips"):
  1. `history`     the user's interactions as arrays (numpy decodes them), the run id of the
                   tenant's stored collaborative model, whether the tenant has a trained popularity
                   table and, only if not, the tenant's newest interactions for live popularity;
  2. `vectors`     the vectors of the heaviest history products;
  3. `candidates`  the nearest live products of each interest from the HNSW index, with their
                   vectors; with a genre or year filter (or MMR) also which collaborative candidates
                   pass it (and their vectors) and the most popular products that do;
  4. `page`        the ranked products (and the products their reasons name), with the popularity
                   continuation after the ranked part when the page reaches it.
Under a filter fewer than RARE products pass, round trip 3 compares their vectors exactly instead of
scanning the index (`FILTERED_NEAREST`), and the most popular products that pass come from a walk
down the popularity order when the filter passes often enough there, else from a join
(`POPULAR_PASSING`). Plus one more, only when a filter's index scan gives up (after
MAX_SCAN_TUPLES): the nearest products exactly, among those that pass (`FILTERED_EXACT`); and one
when a ranked product was deleted since the last training run and the page must be asked again
without it. The collaborative model (neighbour rows and popularity) comes from memory
(`services.api.neighbours`: loaded once per training run per process, not per request). The filters
(deleted, exclusions, genre, years) are written once, in `_filter`. Vectors travel as pgvector's
binary form (`vector_send`), decoded by numpy at once.
"""
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
import numpy as np
from pgvector import Vector

from services.api.neighbours import CollaborativeModels
from services.api.products import PRODUCT_COLUMNS
from services.api.scoring import Vectors
from shared.interactions import TYPES, History, popularity, training_weights
from shared.models import order_expression
from shared.neighbours import CollaborativeModel

# A filtered index scan gives up after visiting this many vectors (FILTERED_EXACT then answers).
# pgvector's default, 20,000, spent 0.5 s of scanning at 100,000 products on a genre nothing has;
# 5,000, about 0.2 s. At 2,000 a 2,000-item user's genre page went to the exact query (expensive for
# a common genre in a large catalogue); at 5,000 every bench page came out as at 20,000.
MAX_SCAN_TUPLES = 5000
LIVE_POPULARITY_EVENTS = 50_000  # before a tenant's first training run: popularity of its newest interactions


@dataclass(frozen=True)
class Filters:
    genre: str | None = None
    year_from: int | None = None
    year_to: int | None = None
    exclude: tuple[str, ...] = ()

    @property
    def narrowing(self) -> bool:
        """Whether a genre or year filter is set (the exclusions aside)."""
        return any(value is not None for value in (self.genre, self.year_from, self.year_to))


def id_list(position: int) -> str:
    """Parameter $position as a list of product ids, sent as one comma-joined text (`joined`):
    asyncpg encodes a text[] element by element, 1.9 ms for 2,000 ids against 0.2 ms for one text.
    A product id never holds a comma (shared.schemas.ID_PATTERN)."""
    return f"string_to_array(${position}::text, ',')"


def joined(product_ids) -> str:
    return ",".join(product_ids)


def _filter(first: int, alias: str = "p") -> str:
    """Live products passing the filters; parameters $first .. $first+3: excluded ids, genre, years."""
    e, g, f, t = first, first + 1, first + 2, first + 3
    return (f"NOT {alias}.deleted AND {alias}.id NOT IN (SELECT unnest({id_list(e)}))"
            f" AND (${g}::text IS NULL OR {alias}.genres @> ARRAY[${g}::text])"
            f" AND (${f}::int IS NULL OR {alias}.year >= ${f}) AND (${t}::int IS NULL OR {alias}.year <= ${t})")


def _packed(events: str) -> str:
    """The columns of the events in CTE `events` (a constant name), each as one value, in one pass:
    ids comma-joined, type codes ($5: TYPES) as int2 and the floats as float8, packed big-endian in a
    bytea (`_columns` decodes them)."""
    return (f"(SELECT string_agg(product_id, ',') AS {events}_ids,"
            f" string_agg(int2send((array_position($5::text[], type) - 1)::int2), '') AS {events}_types,"
            f" string_agg(float8send(stars), '') AS {events}_stars, string_agg(float8send(s), '') AS {events}_times"
            f" FROM {events}) {events}_packed")


# $1 tenant, $2 user (NULL: none), $3 events, $4 live-popularity events, $5 TYPES
HISTORY = f"""
WITH t AS (SELECT (SELECT score FROM product_popularity WHERE tenant_id = $1 ORDER BY score DESC LIMIT 1) IS NOT NULL
                  AS trained),  -- by the rank index: an EXISTS scanned past the dead rows of earlier trainings
h AS (SELECT product_id, type, coalesce(value, 'NaN')::float8 AS stars, extract(epoch FROM occurred_at)::float8 AS s
      FROM interactions WHERE tenant_id = $1 AND user_id = $2 ORDER BY occurred_at DESC, id DESC LIMIT $3),
l AS (SELECT product_id, type, coalesce(value, 'NaN')::float8 AS stars, extract(epoch FROM occurred_at)::float8 AS s
      FROM interactions WHERE tenant_id = $1 AND NOT (SELECT trained FROM t)
      ORDER BY occurred_at DESC, id DESC LIMIT $4)
SELECT (SELECT trained FROM t) AS trained,
       (SELECT run_id FROM collaborative_models WHERE tenant_id = $1) AS run,
       h_packed.*, l_packed.*
FROM {_packed("h")} CROSS JOIN {_packed("l")}
"""

# $1 tenant, $2 model, $3 product ids
VECTORS = ("SELECT product_id, vector_send(embedding) AS embedding FROM product_vectors"
           f" WHERE tenant_id = $1 AND model = $2 AND product_id = ANY({id_list(3)})")

# $1 tenant, $2 model, $3 query vectors, $4 how many per query, $5-$8 filters. Rows: nearest to query ord.
# The nearest-neighbour scan reads the vectors alone: a deleted product has none (shared.catalog
# drops them), and the products row is consulted only when a genre or year filter is set (with a
# custom plan per call the planner drops the test when they are all NULL), then for each candidate
# the scan reaches: `OFFSET 0` keeps PostgreSQL from turning the EXISTS into a hash of every
# product passing the filter, built per request (120,000 rows for a genre at 1,000,000 products:
# the statement took 180-200 ms with it, about 60 without).
_INDEXED = f"""
    SELECT v.product_id, v.embedding
    FROM product_vectors v
    WHERE v.tenant_id = $1 AND v.model = $2 AND v.product_id NOT IN (SELECT unnest({id_list(5)}))
      AND (($6::text IS NULL AND $7::int IS NULL AND $8::int IS NULL) OR EXISTS (
           SELECT 1 FROM products p WHERE p.tenant_id = v.tenant_id AND p.id = v.product_id AND {_filter(5)} OFFSET 0))
    ORDER BY {{order}}"""
EXACT_ORDER = "(v.embedding <=> a.query) + 0, v.product_id"  # not index-shaped: an exact scan
# The products that pass a genre or year filter first, from the filter's own indexes, and only their
# vectors compared, exactly: what a filter few products pass wants (a hash of them). At 100,000
# products, for three queries: 2 ms when nothing passes, 18-26 ms when 800-1,300 products do,
# 160-190 ms for a genre of 12,000; NEAREST with EXACT_ORDER, its EXISTS checked for every vector,
# took 0.7 s under any filter.
_PASSING = f"""
    SELECT v.product_id, v.embedding
    FROM products p JOIN product_vectors v ON v.tenant_id = p.tenant_id AND v.product_id = p.id AND v.model = $2
    WHERE p.tenant_id = $1 AND {_filter(5)}
    ORDER BY {EXACT_ORDER}"""
RARE = 2000  # a genre or year filter fewer products pass skips the index scan for `_PASSING`


def _nearest(scan: str) -> str:
    """For each query vector ($3, `ord` from 1) the first $4 rows of `scan`, which reads `a.query`."""
    return f"""SELECT a.ord::int AS ord, c.product_id, vector_send(c.embedding) AS embedding
FROM unnest($3::vector[]) WITH ORDINALITY AS a(query, ord)
CROSS JOIN LATERAL ({scan}
    LIMIT $4) c"""


NEAREST = _nearest(_INDEXED) + "\n"
# NEAREST under a genre or year filter. When fewer than RARE products pass (counted first, by the
# filter's indexes: 2-5 ms at 100,000 products when many pass) the index scan would visit
# MAX_SCAN_TUPLES vectors per query for nothing (the rare filter of `make bench`: 145 ms at the
# median), so those products are compared exactly instead. A statement of its own: planning the
# two branches took 0.2-0.3 ms more, too much for every request.
FILTERED_NEAREST = f"""
WITH rare AS (SELECT (SELECT count(*) FROM (
    SELECT FROM products p WHERE p.tenant_id = $1 AND {_filter(5)} LIMIT {RARE}) f) < {RARE} AS yes)
{_nearest(_INDEXED)}
WHERE NOT (SELECT yes FROM rare)
UNION ALL
{_nearest(_PASSING)}
WHERE (SELECT yes FROM rare)
"""

# After NEAREST or FILTERED_NEAREST: $9 collaborative ids, $10 their vectors too.
# Rows: ord > 0 nearest to query ord, 0 collaborative (passing the filters).
MORE = f"""UNION ALL
SELECT 0, p.id, CASE WHEN $10 THEN vector_send(v.embedding) END
FROM products p LEFT JOIN product_vectors v ON $10 AND v.tenant_id = p.tenant_id AND v.product_id = p.id
     AND v.model = $2
WHERE p.tenant_id = $1 AND p.id = ANY({id_list(9)}) AND {_filter(5)}
"""

# The most popular products that pass a filter, two ways. Walking the popularity order and looking
# each product up stops at the $11-th that passes: at 100,000 products 5-6 ms for a filter one product
# in eight passes (Action), where joining every passing product to every score and sorting takes
# 14 ms (docs/gateway-bench.md). But for a filter one product in 60 passes the walk took 38 ms
# against the join's 8, and for a filter nothing passes it would look up every product. So a
# filter fewer than RARE products pass (FILTERED_NEAREST's count) goes to the join at once; for the
# others the first POPULAR_PROBE products of the order are looked up: the walk is taken when at
# least one in POPULAR_PASS_RATE of them passes, and gives way to the join when it has not found
# enough within POPULAR_WALK products. `OFFSET 0` keeps each lookup a lookup (else the planner
# hashes every passing product, as the join does).
POPULAR_PROBE = 400
POPULAR_PASS_RATE = 12
POPULAR_WALK = 4000


def _popular_order(count: str, rows: str) -> str:
    """The first `rows` of the tenant's popularity order that pass the filters ($5-$8), most popular
    first, at most `count` of them."""
    return f"""(SELECT s.product_id, s.score FROM (
         SELECT product_id, score, tenant_id FROM product_popularity WHERE tenant_id = $1
         ORDER BY score DESC, product_id LIMIT {rows}) s
     WHERE EXISTS (SELECT 1 FROM products p WHERE p.tenant_id = s.tenant_id AND p.id = s.product_id
                   AND {_filter(5)} OFFSET 0)
     ORDER BY s.score DESC, s.product_id LIMIT {count})"""


def _popular_joined(columns: str, first: int, limit: str, condition: str = "") -> str:
    """`columns` of the first `limit` products that pass the filters ($first..$first+3), most
    popular first: every passing product joined to its score and sorted (the planner may walk the
    popularity order instead when `limit` is small)."""
    return f"""(SELECT {columns} FROM product_popularity s
     JOIN products p ON p.tenant_id = s.tenant_id AND p.id = s.product_id
     WHERE s.tenant_id = $1 AND {_filter(first)}{condition} ORDER BY s.score DESC, p.id LIMIT {limit})"""


_PROBED = f"CASE WHEN (SELECT yes FROM rare) THEN 0 ELSE {POPULAR_PROBE} END"
_WALKED = f"CASE WHEN (SELECT passing FROM probe) * {POPULAR_PASS_RATE} >= {POPULAR_PROBE} THEN {POPULAR_WALK} ELSE 0 END"

# After FILTERED_NEAREST (it reads `rare`) and MORE: $11 how many popular. Rows: -1, most popular first.
POPULAR_PASSING = f"""UNION ALL
(WITH probe AS (SELECT count(*) AS passing FROM {_popular_order(POPULAR_PROBE, _PROBED)} f),
      walk AS ({_popular_order("$11::bigint", _WALKED)}),
      walked AS (SELECT count(*) >= $11::bigint AS enough FROM walk)
 (SELECT -1, product_id, NULL::bytea FROM walk WHERE (SELECT enough FROM walked) ORDER BY score DESC, product_id)
 UNION ALL
 {_popular_joined("-1, p.id, NULL::bytea", 5, "$11::bigint", " AND NOT (SELECT enough FROM walked)")})
"""
# NEAREST's lists exactly under a genre or year filter, for the queries whose index scan gave up
# (after MAX_SCAN_TUPLES); without a filter, NEAREST with EXACT_ORDER.
FILTERED_EXACT = _nearest(_PASSING)


def indexed_order(dimension: int | None) -> str:
    """The order its model's HNSW index serves (shared.models: one index per model, on vector(D));
    without the dimension, an order no index serves."""
    return f"{order_expression('v.embedding', dimension)} <=> a.query" if dimension else "v.embedding <=> a.query"


# $1 tenant, $2 model, $3 product ids: the products alone (a page that does not reach the continuation;
# planning the whole of PAGE took about 1 ms, more than running it).
PRODUCTS = f"""
SELECT {PRODUCT_COLUMNS}, NULL::float8 AS filler_score, NULL::bigint AS position FROM products p
WHERE p.tenant_id = $1 AND p.id = ANY({id_list(3)}) AND NOT p.deleted"""

# $1 tenant, $2 model, $3 product ids, $4-$7 filters of the continuation, $8 its offset, $9 its length, $10-$11 live
# popularity (before the first training run). The continuation reads products in popularity order
# from an index and stops at the page: the trained scores (product_popularity_rank_idx) or the live
# ones, then, only when those run out, the products nobody has scored, by id.
PAGE = f"""
WITH scored AS (
    {_popular_joined("p.id, s.score::float8 AS score", 4, "$8::bigint + $9::bigint")}
    UNION ALL
    (SELECT p.id, l.score FROM unnest({id_list(10)}, $11::float8[]) AS l(id, score)
     JOIN products p ON p.tenant_id = $1 AND p.id = l.id
     WHERE {_filter(4)} ORDER BY l.score DESC, p.id LIMIT $8::bigint + $9::bigint)
), filler AS (
    SELECT c.id, c.score, row_number() OVER (ORDER BY c.score DESC, c.id) AS position FROM (
        SELECT id, score FROM scored
        UNION ALL
        (SELECT p.id, 0::float8 FROM products p
         WHERE p.tenant_id = $1 AND {_filter(4)} AND (SELECT count(*) FROM scored) < $8::bigint + $9::bigint
           AND NOT EXISTS (SELECT 1 FROM product_popularity s WHERE s.tenant_id = $1 AND s.product_id = p.id)
           AND p.id NOT IN (SELECT unnest({id_list(10)}))
         ORDER BY p.id LIMIT $8::bigint + $9::bigint)
    ) c
    ORDER BY c.score DESC, c.id LIMIT $9 OFFSET $8
)
{PRODUCTS}
UNION ALL
SELECT {PRODUCT_COLUMNS}, f.score, f.position FROM filler f JOIN products p ON p.tenant_id = $1 AND p.id = f.id
"""


def vectors_of(sent: list[bytes]) -> np.ndarray:
    """Vectors in pgvector's binary form (`vector_send`: int16 dimension, int16 unused, float4s, all
    big-endian), all of one dimension, as one float32 matrix."""
    if not sent:
        return np.zeros((0, 0), dtype=np.float32)
    words = np.frombuffer(b"".join(sent), dtype=">f4").reshape(len(sent), -1)
    return words[:, 1:].astype(np.float32)


def _columns(row: asyncpg.Record, prefix: str) -> History:
    if row[f"{prefix}_ids"] is None:
        return History.empty()
    return History(np.array(row[f"{prefix}_ids"].split(","), dtype=object),
                   np.frombuffer(row[f"{prefix}_types"], dtype=">i2").astype(np.int8),
                   np.frombuffer(row[f"{prefix}_stars"], dtype=">f8").astype(np.float64),
                   np.frombuffer(row[f"{prefix}_times"], dtype=">f8").astype(np.float64))


@dataclass(frozen=True)
class Start:
    history: History
    live_popularity: dict[str, float]  # empty once the tenant's model is trained
    run: int | None = None  # the training run of the tenant's stored collaborative model


async def history(conn: asyncpg.Connection, tenant_id: str, user_id: str | None, max_events: int = 5000) -> Start:
    """Round trip 1. The history comes newest first (the newest `max_events`) and is handed on oldest
    first, the order its events were given in: of events at one instant, the later one decides."""
    row = await conn.fetchrow(HISTORY, tenant_id, user_id, max_events, LIVE_POPULARITY_EVENTS, list(TYPES))
    live = _columns(row, "l")
    scores = popularity(live.product_ids, training_weights(live.types, live.stars), live.times_s) if len(live) else {}
    newest_first = _columns(row, "h")
    return Start(History(*(column[::-1] for column in (newest_first.product_ids, newest_first.types,
                                                        newest_first.stars, newest_first.times_s))),
                 scores, row["run"])


async def vectors(conn: asyncpg.Connection, tenant_id: str, model: str, product_ids: list[str]) -> Vectors:
    """Round trip 2 (none when the strategy needs no history vectors)."""
    if not product_ids:
        return Vectors([], np.zeros((0, 0), dtype=np.float32))
    rows = await conn.fetch(VECTORS, tenant_id, model, joined(product_ids))
    return Vectors([row["product_id"] for row in rows], vectors_of([row["embedding"] for row in rows]))


@dataclass(frozen=True)
class Found:
    nearest: list[list[str]]  # per query, nearest first
    allowed: set[str]  # collaborative candidates that pass the filters
    popular: list[str]  # most popular passing the filters, most popular first (when asked)
    vectors: Vectors  # of the nearest (and the collaborative ones when asked)


async def candidates(conn: asyncpg.Connection, tenant_id: str, model: str, queries: list[np.ndarray],
                     counts: list[int], excluded: Iterable[str], filters: Filters, collaborative: list[str],
                     with_vectors: bool, popular: int, dimension: int | None = None) -> Found:
    """Round trip 3 (and the exact retry for queries whose index scan stopped short). Every query
    asks for the largest count (one LIMIT the planner can see); each list is cut to its own."""
    args = [tenant_id, model, [Vector(q) for q in queries], max(counts, default=0), joined(excluded), filters.genre,
            filters.year_from, filters.year_to, joined(collaborative), with_vectors, popular]
    # only the parts asked for: the planner plans each part it is given (POPULAR_PASSING reads the
    # count of FILTERED_NEAREST; the api asks for popular products only under a genre or year filter)
    statement, count = FILTERED_NEAREST if filters.narrowing or popular else NEAREST, 8
    if collaborative or popular:
        statement, count = statement + MORE, 10
    if popular:
        statement, count = statement + POPULAR_PASSING, 11
    rows = await conn.fetch(statement.format(order=indexed_order(dimension)), *args[:count])
    nearest: list[list[str]] = [[] for _ in queries]
    allowed: set[str] = set()
    most_popular: list[str] = []
    sent = _collect(rows, list(range(len(queries))), nearest, allowed, most_popular)
    short = [i for i, ids in enumerate(nearest) if len(ids) < counts[i]]
    if short:  # the index scan stopped early (selective filters, small catalogue): ask exactly
        for i in short:
            nearest[i].clear()
        args[2:4] = [[args[2][i] for i in short], max(counts[i] for i in short)]
        exact = FILTERED_EXACT if filters.narrowing else NEAREST.format(order=EXACT_ORDER)
        sent += _collect(await conn.fetch(exact, *args[:8]), short, nearest, allowed,
                         most_popular)
    return Found([ids[:count] for ids, count in zip(nearest, counts)], allowed, most_popular,
                 Vectors([row["product_id"] for row in sent], vectors_of([row["embedding"] for row in sent])))


async def explain_nearest(conn: asyncpg.Connection, tenant_id: str, model: str, query: np.ndarray, count: int,
                          filters: Filters = Filters(), dimension: int | None = None) -> str:
    """The plan of round trip 3's nearest-neighbour part for one query (checks that it uses the index)."""
    statement = FILTERED_NEAREST if filters.narrowing else NEAREST
    rows = await conn.fetch("EXPLAIN " + statement.format(order=indexed_order(dimension)), tenant_id, model, [Vector(query)],
                            count, "", filters.genre, filters.year_from, filters.year_to)
    return "\n".join(row[0] for row in rows)


def _collect(rows: list[asyncpg.Record], query_of: list[int], nearest: list[list[str]], allowed: set[str],
             most_popular: list[str]) -> list[asyncpg.Record]:
    """Files `rows` under the nearest of each query, the allowed collaborative candidates or the
    most popular; returns those that carry a vector."""
    for row in rows:
        pid, ord_ = row["product_id"], row["ord"]
        if ord_ > 0:
            nearest[query_of[ord_ - 1]].append(pid)
        elif ord_ == 0:
            allowed.add(pid)
        else:
            most_popular.append(pid)
    return [row for row in rows if row["embedding"] is not None]


async def page(conn: asyncpg.Connection, tenant_id: str, model: str, product_ids: list[str], excluded: Iterable[str],
               filters: Filters, offset: int, count: int,
               live: dict[str, float]) -> tuple[dict[str, asyncpg.Record], list[tuple[str, float]]]:
    """Round trip 4: the products by id, and `count` more by popularity from `offset` (not excluded)."""
    if count:
        rows = await conn.fetch(PAGE, tenant_id, model, joined(product_ids), joined(excluded), filters.genre,
                                filters.year_from, filters.year_to, offset, count, joined(live), list(live.values()))
    else:
        rows = await conn.fetch(PRODUCTS, tenant_id, model, joined(product_ids))
    continuation = sorted((row for row in rows if row["position"] is not None), key=lambda row: row["position"])
    return {row["id"]: row for row in rows}, [(row["id"], row["filler_score"]) for row in continuation]


class Store:
    """The request path's round trips on one connection, and the tenant's collaborative model from
    this process's memory (`recommend` takes any object like it)."""

    def __init__(self, conn: asyncpg.Connection, models: CollaborativeModels):
        self.conn = conn
        self.models = models

    async def history(self, *args, **kwargs) -> Start:
        return await history(self.conn, *args, **kwargs)

    async def vectors(self, *args, **kwargs) -> Vectors:
        return await vectors(self.conn, *args, **kwargs)

    async def collaborative(self, tenant_id: str, run: int | None) -> CollaborativeModel | None:
        return await self.models.get(self.conn, tenant_id, run)

    async def candidates(self, *args, **kwargs) -> Found:
        return await candidates(self.conn, *args, **kwargs)

    async def page(self, *args, **kwargs) -> tuple[dict[str, asyncpg.Record], list[tuple[str, float]]]:
        return await page(self.conn, *args, **kwargs)
