"""The collaborative and hybrid strategies: the trainer's neighbour tables applied to the user's
current history at request time (a new like counts in the very next response), blended with
content similarity and popularity by `shared.ranking`.

    collaborative(j) = similar(j) / max + NEXT_WEIGHT * next(j) / max
      similar(j) = sum over the SIMILAR_HISTORY latest h of weight(h) * neighbour weight(h, j)  (likes pull, dislikes push)
      next(j)    = sum over the RECENT_ITEMS latest h of recency(h) * follow weight(h, j)
    hybrid(j)    = blend of collaborative, content (the multi-interest content ranking) and popularity

Defaults were set by `make eval` on MovieLens (see EVAL.md).
"""
import heapq
from dataclasses import dataclass, field

import asyncpg

from services.api.scoring import Scored
from shared import ranking
from shared.interactions import ProductWeights

NEXT_WEIGHT = 0.4
RECENT_ITEMS = 10
SIMILAR_HISTORY = 1000  # the most recent history products the similar table is applied to
COLLABORATIVE_CANDIDATES = 1000  # the best collaborative candidates that go on to the blend
POPULAR_CANDIDATES = 200


@dataclass(frozen=True)
class Tuning:
    """The blend's knobs; requests may override them (`weights=content:0.5,next:0.2`) to tune."""

    blend: ranking.BlendWeights = field(default_factory=ranking.BlendWeights)
    next_weight: float = NEXT_WEIGHT

    @classmethod
    def parse(cls, text: str | None) -> "Tuning":
        """From `name:value,...` with names collaborative, content, popularity, next; ValueError if bad."""
        values = {}
        for part in filter(None, (text or "").split(",")):
            name, _, number = part.partition(":")
            if name not in ("collaborative", "content", "popularity", "next"):
                raise ValueError(f"unknown weight {name!r}; use collaborative, content, popularity, next")
            values[name] = float(number)
            if not 0 <= values[name] <= 10:
                raise ValueError(f"{name} must be between 0 and 10")
        next_weight = values.pop("next", NEXT_WEIGHT)
        return cls(ranking.BlendWeights(**{**ranking.BlendWeights().__dict__, **values}), next_weight)


REASON_TYPES = {"similar": "people_also_liked", "next": "people_watched_next", "content": "similar_to"}


async def neighbour_rows(conn: asyncpg.Connection, tenant_id: str, similar_ids: list[str],
                         next_ids: list[str]) -> dict[str, dict[str, list[tuple[str, float]]]]:
    """kind -> history product -> [(neighbour, weight), ...] from the trainer's tables."""
    rows = await conn.fetch(
        "SELECT kind, product_id, neighbor_ids, weights FROM item_neighbors WHERE tenant_id = $1"
        " AND ((kind = 'similar' AND product_id = ANY($2::text[])) OR (kind = 'next' AND product_id = ANY($3::text[])))",
        tenant_id, similar_ids, next_ids,
    )
    tables: dict[str, dict[str, list[tuple[str, float]]]] = {"similar": {}, "next": {}}
    for row in rows:
        tables[row["kind"]][row["product_id"]] = list(zip(row["neighbor_ids"], row["weights"]))
    return tables


def recency_weights(history: ProductWeights, count: int = RECENT_ITEMS) -> dict[str, float]:
    """The latest `count` distinct products, the newest weighing 1 and halving every count / 2."""
    return {pid: 0.5 ** (rank / (count / 2)) for rank, pid in enumerate(history.latest(count))}


def _scaled(scores: ranking.Scored) -> ranking.Scored:
    top = max((score for score, _ in scores.values()), default=0.0)
    return {pid: (score / top, because) for pid, (score, because) in scores.items()} if top > 0 else {}


def collaborative(history: ProductWeights, tables: dict, next_weight: float) -> tuple[ranking.Scored, dict[str, str]]:
    """Collaborative scores and, per candidate, which table contributed most."""
    weights = dict(zip(history.latest(SIMILAR_HISTORY), history.weights[:SIMILAR_HISTORY].tolist()))
    similar = _scaled(ranking.collaborative_scores(weights, tables["similar"]))
    following = _scaled(ranking.collaborative_scores(recency_weights(history), tables["next"]))
    combined, source = {}, {}
    for pid in similar.keys() | following.keys():
        s, s_from = similar.get(pid, (0.0, ""))
        f, f_from = following.get(pid, (0.0, ""))
        f *= next_weight
        combined[pid] = (s + f, s_from if s >= f else f_from)
        source[pid] = "similar" if s >= f else "next"
    top = heapq.nlargest(COLLABORATIVE_CANDIDATES, combined.items(), key=lambda item: item[1][0])
    return dict(top), source


async def eligible(conn: asyncpg.Connection, tenant_id: str, product_ids: list[str], filters) -> set[str]:
    rows = await conn.fetch(
        "SELECT id FROM products WHERE tenant_id = $1 AND id = ANY($2::text[]) AND NOT deleted"
        " AND ($3::text IS NULL OR genres @> ARRAY[$3::text])"
        " AND ($4::int IS NULL OR year >= $4) AND ($5::int IS NULL OR year <= $5)",
        tenant_id, product_ids, filters.genre, filters.year_from, filters.year_to,
    )
    return {row["id"] for row in rows}


async def popularity(conn: asyncpg.Connection, tenant_id: str, product_ids: list[str]) -> dict[str, float]:
    """Stored popularity of the given products plus the most popular overall (cold users)."""
    rows = await conn.fetch(
        "(SELECT product_id, score FROM product_popularity WHERE tenant_id = $1 AND product_id = ANY($2::text[]))"
        " UNION (SELECT product_id, score FROM product_popularity WHERE tenant_id = $1 ORDER BY score DESC LIMIT $3)",
        tenant_id, product_ids, POPULAR_CANDIDATES,
    )
    return {row["product_id"]: float(row["score"]) for row in rows}


def content_scores(ranked: list[Scored]) -> ranking.Scored:
    """The multi-interest content ranking as scores in (0, 1], by rank: the interleaving that keeps
    every interest in the list survives the blend."""
    return {item.product_id: (1 - rank / len(ranked), item.reasons[0].get("product_id"))
            for rank, item in enumerate(ranked)}


def _reasons(recommendation: ranking.Recommendation, source: dict[str, str]) -> list[dict]:
    if recommendation.reason == ranking.POPULAR or recommendation.because is None:
        return [{"type": "popular"}]
    kind = source.get(recommendation.product_id, "similar") if recommendation.reason == "collaborative" else "content"
    return [{"type": REASON_TYPES[kind], "product_id": recommendation.because}]


async def rank(ctx, content_ranked: list[Scored], with_popularity: bool) -> list[Scored]:
    """Blend the collaborative scores with the content ranking (may be empty) and popularity."""
    history = ctx.history
    tenant_id = ctx.settings.tenant_id
    tables = await neighbour_rows(ctx.conn, tenant_id, history.latest(SIMILAR_HISTORY), history.latest(RECENT_ITEMS))
    collab, source = collaborative(history, tables, ctx.tuning.next_weight)
    content = content_scores(content_ranked)
    pool = sorted(collab.keys() | content.keys())
    popular = await popularity(ctx.conn, tenant_id, pool) if with_popularity else {}
    # The content ranking already obeys the filters and exclusions; check only the others.
    unchecked = (collab.keys() | popular.keys()) - content.keys()
    allowed = await eligible(ctx.conn, tenant_id, sorted(unchecked), ctx.filters) if unchecked else set()
    excluded = set(ctx.excluded) | (unchecked - allowed)
    blended = ranking.blend(collab, content, popular, excluded, ctx.depth, ctx.tuning.blend)
    return [Scored(r.product_id, r.score, _reasons(r, source)) for r in blended if r.score > 0]
