"""Recommendations: a strategy ranks candidates from the history, popularity fills the rest.

The list for a request is one fixed ranking: first what the strategy ranked (at most `depth`
items), then every other eligible product by popularity. Pages are slices of that ranking, so
page 2 neither repeats nor skips page 1 while the data stays the same.
"""
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
import asyncpg
import numpy as np

from services.api import candidates, hybrid, products
from services.api.candidates import Filters
from services.api.scoring import Scored, find_interests, interest_shares, interleave, score_content
from shared.interactions import History, ProductWeights
from shared.ranking import mmr_rerank
from shared.settings import ApiSettings

CONTENT_DEPTH = 40  # at least this many items ranked by the strategy; popularity continues the list after them
DEPTH_PER_LIMIT = 4  # ... and four pages' worth
MAX_HISTORY_VECTORS = 200  # the most heavily weighted history items taken into account
OVERFETCH = 1.2  # candidates fetched per interest, relative to its share of the depth


@dataclass
class Context:
    conn: asyncpg.Connection
    settings: ApiSettings
    weights: dict[str, float]
    vectors: dict[str, np.ndarray]
    excluded: list[str]
    filters: Filters
    depth: int
    history: ProductWeights
    tuning: hybrid.Tuning


Strategy = Callable[[Context], Awaitable[list[Scored]]]


async def _nearest(ctx: Context, queries: list[np.ndarray], counts: list[int]) -> list[list[tuple[str, np.ndarray]]]:
    s = ctx.settings
    return await candidates.nearest(ctx.conn, s.tenant_id, s.model_name, queries, counts,
                                    ctx.excluded, ctx.filters)


async def content_strategy(ctx: Context) -> list[Scored]:
    """Multi-interest content: one neighbourhood per interest, scored against every liked item,
    interleaved so each interest keeps its share of the list."""
    interests = find_interests(ctx.vectors, ctx.weights)
    if not interests:
        return []
    shares = interest_shares(interests, ctx.vectors, ctx.weights)
    counts = [math.ceil(ctx.depth * share * OVERFETCH) + 2 for share in shares]
    found = await _nearest(ctx, [interest.centroid for interest in interests], counts)
    seen: dict[str, np.ndarray] = {}
    for items in found:
        for product_id, vector in items:
            seen.setdefault(product_id, vector)
    if not seen:
        return []
    ids = list(seen)
    scored = score_content(ids, np.stack([np.asarray(seen[i], dtype=np.float32) for i in ids]),
                           ctx.vectors, ctx.weights, interests)
    return interleave(scored, shares)[: ctx.depth]


async def spike_strategy(ctx: Context) -> list[Scored]:
    """The spike's method, kept for comparison: neighbours of the mean of the liked vectors."""
    liked = sorted(pid for pid, weight in ctx.weights.items() if weight > 0 and pid in ctx.vectors)
    if not liked:
        return []
    matrix = np.stack([np.asarray(ctx.vectors[pid], dtype=np.float32) for pid in liked])
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    mean = matrix.mean(axis=0)
    mean /= max(float(np.linalg.norm(mean)), 1e-12)
    [found] = await _nearest(ctx, [mean], [ctx.depth])
    scored = []
    for product_id, vector in found:
        vector = np.asarray(vector, dtype=np.float32)
        vector /= max(float(np.linalg.norm(vector)), 1e-12)
        closest = liked[int((matrix @ vector).argmax())]
        scored.append(Scored(product_id, float(vector @ mean), [{"type": "similar_to", "product_id": closest}]))
    scored.sort(key=lambda item: (-item.score, item.product_id))
    return scored


async def popular_strategy(ctx: Context) -> list[Scored]:
    return []  # the popularity continuation is the whole list


async def collaborative_strategy(ctx: Context) -> list[Scored]:
    """The collaborative model alone: people who liked, or went on to watch, what you did."""
    return await hybrid.rank(ctx, [], with_popularity=False)


async def hybrid_strategy(ctx: Context) -> list[Scored]:
    """The default: collaborative, multi-interest content and popularity, blended."""
    return await hybrid.rank(ctx, await content_strategy(ctx), with_popularity=True)


STRATEGIES: dict[str, Strategy] = {
    "hybrid": hybrid_strategy,
    "collaborative": collaborative_strategy,
    "content": content_strategy,
    "spike": spike_strategy,
    "popular": popular_strategy,
}
DEFAULT_STRATEGY = "hybrid"


def ranked_depth(limit: int) -> int:
    return max(CONTENT_DEPTH, DEPTH_PER_LIMIT * limit)


@dataclass
class Page:
    items: list[dict]
    more: bool


async def recommend(pool: asyncpg.Pool, settings: ApiSettings, history: History | None, filters: Filters,
                    strategy: str, limit: int, offset: int = 0, depth: int | None = None,
                    user_id: str | None = None, tuning: hybrid.Tuning = hybrid.Tuning(),
                    diversity: float = 0.0) -> Page:
    """One page of the ranking for a history (`history`, or the stored history of `user_id`);
    history items and `filters.exclude` never appear. Every page of one list must use the same
    `depth` (the cursor carries it)."""
    depth = depth or ranked_depth(limit)
    async with pool.acquire() as conn:
        if user_id is not None:
            history = await candidates.history(conn, settings.tenant_id, user_id)
        product_weights = (history or History.empty()).weights()
        weights = product_weights.as_dict()
        heaviest = sorted((pid for pid, w in weights.items() if w != 0), key=lambda pid: -abs(weights[pid]))
        excluded = sorted(set(weights) | set(filters.exclude))
        vectors = await candidates.vectors(conn, settings.tenant_id, settings.model_name,
                                           heaviest[:MAX_HISTORY_VECTORS])
        ctx = Context(conn, settings, weights, vectors, excluded, filters, depth, product_weights, tuning)
        ranked = await STRATEGIES[strategy](ctx)
        if diversity > 0 and ranked:
            found = await candidates.vectors(conn, settings.tenant_id, settings.model_name,
                                             [item.product_id for item in ranked])
            ranked = mmr_rerank(ranked, {pid: v / max(float(np.linalg.norm(v)), 1e-12) for pid, v in found.items()},
                                len(ranked), diversity)
        page = ranked[offset: offset + limit]
        more = len(ranked) > offset + limit
        if len(page) < limit:
            need = limit - len(page)
            filler = await candidates.popular(conn, settings.tenant_id, excluded + [s.product_id for s in ranked],
                                              filters, max(0, offset - len(ranked)), need + 1)
            more = len(filler) > need
            page += [Scored(pid, score, [{"type": "popular"}]) for pid, score in filler[:need]]
        return Page(await _items(conn, settings, page), more)


async def _items(conn: asyncpg.Connection, settings: ApiSettings, page: list[Scored]) -> list[dict]:
    """The response items: each product in full, its score and reasons naming the history items."""
    reason_ids = {r["product_id"] for item in page for r in item.reasons if "product_id" in r}
    found = await products.get_products(conn, settings.tenant_id, settings.model_name,
                                        [item.product_id for item in page] + sorted(reason_ids))
    items = []
    for item in page:
        if item.product_id not in found:
            continue  # deleted since it was ranked
        reasons = [
            {**r, "title": found[r["product_id"]]["title"]} if r.get("product_id") in found else r
            for r in item.reasons
        ]
        items.append({"product": found[item.product_id], "score": round(item.score, 6), "reasons": reasons})
    return items
