"""Recommendations: a strategy ranks candidates from the history, popularity continues the list.

The list for a request is one fixed ranking: first what the strategy ranked (at most `depth`
items), then every other eligible product by popularity. Pages are slices of that ranking, so
page 2 neither repeats nor skips page 1 while the data stays the same.

`recommend` does the round trips (`store`, at most four); everything between them is pure:
`plan` (what to fetch for the history), `queries` (the nearest-neighbour queries), `rank`. The
collaborative candidates are computed while a statement runs (`overlapped`), and only the shown
ones get their reason (`hybrid.explain`).
"""
import asyncio
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from services.api import hybrid
from services.api.scoring import Vectors, find_interests, interest_shares, interleave, score_content, unit_rows
from services.api.store import Filters, Found, Store
from shared.interactions import History, ProductWeights
from shared.neighbours import CollaborativeModel
from shared.ranking import CONTENT, POPULAR, Candidate, Scores, mmr_rerank

T = TypeVar("T")

CONTENT_DEPTH = 40  # at least this many items ranked by the strategy; popularity continues the list after them
DEPTH_PER_LIMIT = 4  # ... and four pages' worth
MAX_HISTORY_VECTORS = 50  # the most heavily weighted history items taken into account (make eval: 100 and 200 scored the same)
OVERFETCH = 1.2  # candidates fetched per interest, relative to its share of the depth
STRATEGIES = ("hybrid", "collaborative", "content", "spike", "popular")
DEFAULT_STRATEGY = "hybrid"
USES_CONTENT = {"hybrid", "content", "spike"}
USES_COLLABORATIVE = {"hybrid", "collaborative"}


def ranked_depth(limit: int) -> int:
    return max(CONTENT_DEPTH, DEPTH_PER_LIMIT * limit)


@dataclass(frozen=True)
class Request:
    """What one page of recommendations is asked for, once the query is parsed and the tenant known."""

    tenant_id: str
    model: str
    strategy: str
    filters: Filters
    limit: int
    offset: int
    depth: int
    tuning: hybrid.Tuning = hybrid.Tuning()
    diversity: float = 0.0
    dimension: int | None = None  # of the model's vectors: the query then uses the model's HNSW index


@dataclass(frozen=True)
class Plan:
    vector_ids: list[str]
    similar_ids: list[str]
    next_ids: list[str]


def plan(strategy: str, weights: ProductWeights) -> Plan:
    """Which history products' vectors and collaborative neighbour rows the strategy needs."""
    vector_ids: list[str] = []
    if strategy in USES_CONTENT:
        nonzero = np.flatnonzero(weights.weights)
        heaviest = nonzero[np.argsort(-np.abs(weights.weights[nonzero]), kind="stable")][:MAX_HISTORY_VECTORS]
        vector_ids = [weights.product_ids[i] for i in heaviest]
    if strategy not in USES_COLLABORATIVE:
        return Plan(vector_ids, [], [])
    return Plan(vector_ids, weights.latest(hybrid.SIMILAR_HISTORY), weights.latest(hybrid.RECENT_ITEMS))


@dataclass(frozen=True)
class Queries:
    vectors: list[np.ndarray]
    counts: list[int]
    interests: list  # scoring.Interest, one per query (content); empty for the spike's single query
    shares: list[float]


def queries(strategy: str, weights: dict[str, float], vectors: Mapping[str, np.ndarray], depth: int) -> Queries:
    """The nearest-neighbour queries: one per interest (content, hybrid) or the mean of the likes (spike)."""
    if strategy == "spike":
        liked = sorted(pid for pid, w in weights.items() if w > 0 and pid in vectors)
        if not liked:
            return Queries([], [], [], [])
        mean = Vectors.of(vectors).units(liked).mean(axis=0)
        return Queries([mean / max(float(np.linalg.norm(mean)), 1e-12)], [depth], [], [])
    if strategy not in USES_CONTENT:
        return Queries([], [], [], [])
    interests = find_interests(vectors, weights)
    shares = interest_shares(interests, vectors, weights) if interests else []
    counts = [math.ceil(depth * share * OVERFETCH) + 2 for share in shares]
    return Queries([interest.centroid for interest in interests], counts, interests, shares)


def content_ranking(strategy: str, q: Queries, weights: dict[str, float], history_vectors: Mapping[str, np.ndarray],
                    found: Found, depth: int) -> list[Candidate]:
    """The content candidates (from the nearest-neighbour rows) ranked: interleaved interests, or
    for the spike by cosine to the mean of the likes."""
    ids = list(dict.fromkeys(pid for nearest in found.nearest for pid in nearest))
    if not ids:
        return []
    matrix = found.vectors.rows(ids)
    if strategy == "spike":
        liked = sorted(pid for pid, w in weights.items() if w > 0 and pid in history_vectors)
        units = unit_rows(matrix)
        closest = (units @ Vectors.of(history_vectors).units(liked).T).argmax(axis=1)
        scores = units @ q.vectors[0]
        ranked = [Candidate(pid, float(scores[i]), CONTENT, liked[closest[i]]) for i, pid in enumerate(ids)]
        return sorted(ranked, key=lambda c: (-c.score, c.product_id))[:depth]
    return interleave(score_content(ids, matrix, history_vectors, weights, q.interests), q.shares, depth)


def rank(request: Request, weights: ProductWeights, history_vectors: Mapping[str, np.ndarray], q: Queries,
         given: "FromModel", found: Found, excluded: set[str]) -> list[Candidate]:
    """The strategy's ranking (at most `depth`), before the popularity continuation; MMR if asked."""
    weight_of = weights.as_dict()
    content = content_ranking(request.strategy, q, weight_of, history_vectors, found, request.depth) \
        if request.strategy in USES_CONTENT else []
    if request.strategy in USES_COLLABORATIVE:
        # the content ranking already obeys the filters and exclusions; the rest was checked in `found`
        failed = set(given.checked) - found.allowed
        popular = given.most_popular
        if popular is None:  # round trip 3 found them; one the model does not know has no popularity
            popular = given.model.codes([pid for pid in found.popular if pid not in excluded]) \
                if given.model is not None else np.zeros(0, dtype=np.int64)
            popular = popular[popular >= 0]
        ranked = hybrid.blend(given.candidates, content, popular, given.model, excluded | failed if failed else excluded,
                              request.depth, request.tuning, request.strategy == "hybrid" and given.model is not None)
    else:
        ranked = content
    if request.diversity > 0 and ranked:
        ranked = mmr_rerank(ranked, found.vectors, len(ranked), request.diversity)
    return ranked


@dataclass(frozen=True)
class FromModel:
    """What the collaborative model in memory gives a request (computed while a statement runs)."""

    model: CollaborativeModel | None
    candidates: Scores  # the collaborative candidates, as codes of the model's products
    rows: hybrid.Neighbourhood | None  # the history's neighbour rows behind them
    most_popular: np.ndarray | None  # codes; None with a genre or year filter (round trip 3 finds them)
    checked: list[str]  # the candidates' ids when round trip 3 checks them against the filters


@dataclass(frozen=True)
class Page:
    items: list[tuple[Candidate, dict]]  # each candidate with its product row
    reasons: dict  # product id -> row, of the products the reasons name
    more: bool


async def overlapped(trip: Awaitable | None, work: Callable[[], T], idle=None) -> tuple[object, T]:
    """(`trip`'s result, `work()`), with `work` computed while `trip`'s statement runs in PostgreSQL:
    the task sends the statement at its first step, before `work` starts. `idle` stands for the
    result when there is no trip."""
    if trip is None:
        return idle, work()
    task = asyncio.ensure_future(trip)
    try:
        await asyncio.sleep(0)
        done = work()
    except BaseException:  # the connection goes back to the pool only once its statement has ended
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise
    return await task, done


async def recommend(store: Store, request: Request, user_id: str | None, session: History | None = None) -> Page:
    """One page of the ranking for the stored history of `user_id` or a `session` history; history
    items and `filters.exclude` never appear. Every page of one list must use the same `depth`."""
    start = await store.history(request.tenant_id, user_id)  # round trip 1
    weights = (session if session is not None else start.history).weights()
    weight_of = weights.as_dict()
    excluded = set(weights.product_ids) | set(request.filters.exclude)
    wanted = plan(request.strategy, weights)
    model = None  # in memory: loaded once per training run
    if request.strategy in USES_COLLABORATIVE:
        model = await store.collaborative(request.tenant_id, start.run)

    popular = hybrid.POPULAR_CANDIDATES if request.strategy == "hybrid" and request.tuning.blend.popularity > 0 else 0
    # Without a genre or year filter, the collaborative candidates and the most popular products need
    # no query: exclusions are known here, and a product deleted since the model was trained is
    # dropped when the page finds no row for it. MMR needs the collaborative candidates' vectors.
    # What the model gives is computed while round trip 3 runs, or round trip 2 when round trip 3
    # must name the collaborative candidates.
    filtered = request.filters.narrowing
    named = filtered or request.diversity > 0

    def from_model() -> FromModel:
        if model is None:
            return FromModel(None, hybrid.NO_CANDIDATES, None, None, [])
        rows = hybrid.Neighbourhood.of(weights, model.rows("similar", wanted.similar_ids),
                                       model.rows("next", wanted.next_ids))
        candidates = hybrid.collaborative(rows, request.tuning.next_weight)
        return FromModel(model, candidates, rows, None if filtered else model.most_popular(popular, excluded),
                         model.product_ids[candidates.ids].tolist() if named else [])

    vectors = store.vectors(request.tenant_id, request.model, wanted.vector_ids)  # round trip 2
    if named:
        history_vectors, given = await overlapped(vectors, from_model)
    else:
        history_vectors = await vectors
    q = queries(request.strategy, weight_of, history_vectors, request.depth)
    check = given.checked if named else []
    trip, nothing = None, Found([], set(), [], Vectors.of({}))
    if q.vectors or check or (popular and filtered):  # round trip 3
        trip = store.candidates(request.tenant_id, request.model, q.vectors, q.counts, excluded, request.filters,
                                check, request.diversity > 0, popular if filtered else 0, request.dimension)
    if named:
        found = await trip if trip else nothing
    else:
        found, given = await overlapped(trip, from_model, nothing)
    rows = given.rows
    ranked = rank(request, weights, history_vectors, q, given, found, excluded)
    end = request.offset + request.limit

    def explained(ranked: list[Candidate]) -> list[Candidate]:  # the reasons of the page's collaborative items
        if not rows:
            return ranked
        return ranked[:request.offset] + hybrid.explain(ranked[request.offset:end], rows, model.code_of) + ranked[end:]

    ranked = explained(ranked)
    page_rows, filler = await _page(store, request, ranked, excluded, start.live_popularity)  # round trip 4
    if any(c.product_id not in page_rows for c in ranked[:end]):  # deleted since the model was trained
        ranked = explained([c for c in ranked[:end] if c.product_id in page_rows] + ranked[end:])
        page_rows, filler = await _page(store, request, ranked, excluded, start.live_popularity)
    page = ranked[request.offset:end]
    need = request.limit - len(page)
    because = sorted({c.because for c in page if c.because})
    more = len(ranked) > end or len(filler) > need
    page += [Candidate(pid, score, POPULAR) for pid, score in filler[:need]]
    return Page([(c, page_rows[c.product_id]) for c in page if c.product_id in page_rows],
                {pid: page_rows[pid] for pid in because if pid in page_rows}, more)


async def _page(store: Store, request: Request, ranked: list[Candidate], excluded: set[str],
                live: dict[str, float]) -> tuple[dict, list[tuple[str, float]]]:
    """The rows of the ranked products up to the page's end (and of the products the page's reasons
    name), and the popularity continuation when the page reaches past the ranked part."""
    end = request.offset + request.limit
    need = request.limit - len(ranked[request.offset:end])
    because = sorted({c.because for c in ranked[request.offset:end] if c.because})
    continuation = need + 1 if end >= len(ranked) else 0  # one more than needed: it decides `more`
    return await store.page(
        request.tenant_id, request.model, [c.product_id for c in ranked[:end]] + because,
        excluded | {c.product_id for c in ranked} if continuation else set(), request.filters,
        max(0, request.offset - len(ranked)), continuation, live if continuation else {})
