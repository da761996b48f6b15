"""Recommendation endpoints: for a known user, for an anonymous session, similar products.

Each view parses its one query object, takes the tenant once (`shared.auth.tenant_of`, from the key), asks
`recommend` for a page and renders its items and reasons.
"""
import re
from datetime import datetime, timezone

from aiohttp import web

from services.api import params, products, users
from services.api.keys import active_models_key, collaborative_models_key, database_key
from services.api.products import product_json
from services.api.query import ListQuery, RankingFields, RecommendationQuery, SessionBody, parse
from services.api.recommend import Page, Request, ranked_depth, recommend
from services.api.store import Store
from shared.auth import tenant_of
from shared.errors import NotFound
from shared.http import read_json
from shared.interactions import History, Interaction
from shared.ranking import CONTENT, NEXT, POPULAR, SIMILAR, Candidate
from shared.schemas import ID_PATTERN

MAX_OFFSET = 10_000
REASON_TYPES = {CONTENT: "similar_to", SIMILAR: "people_also_liked", NEXT: "people_watched_next"}


def path_id(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if not re.fullmatch(ID_PATTERN, value):
        raise params.bad(name, "1-128 characters: letters, digits and . _ : - (not first)")
    return value


def session_history(liked: list[str], disliked: list[str]) -> History:
    """An anonymous session: likes and dislikes all at one instant (a product in both is disliked)."""
    now = datetime.now(timezone.utc)
    return History.of([Interaction(pid, "like", None, now) for pid in liked]
                      + [Interaction(pid, "dislike", None, now) for pid in disliked])


def _reason(candidate: Candidate, named: dict) -> dict:
    if candidate.source == POPULAR or candidate.because is None:
        return {"type": "popular"}
    reason = {"type": REASON_TYPES[candidate.source], "product_id": candidate.because}
    if candidate.because in named:
        reason["title"] = named[candidate.because]["title"]
    return reason


def render(page: Page) -> list[dict]:
    """The response items: each product in full, its score and the reason naming a history product."""
    return [{"product": product_json(row), "score": round(candidate.score, 6), "reasons": [_reason(candidate, page.reasons)]}
            for candidate, row in page.items]


async def ranked_page(request: web.Request, tenant_id: str, query: RankingFields, identity: tuple,
                      user_id: str | None = None, session: History | None = None, strategy: str | None = None) -> dict:
    """`{"items", "next_cursor", "strategy", "model"}` (the embedding model it was ranked with); `identity` names the request so a cursor cannot be
    replayed against other parameters (or another tenant)."""
    strategy = strategy or query.strategy
    filters, tuning = query.filters(), query.tuning
    fingerprint = params.fingerprint(tenant_id, *identity, strategy, filters, tuning, query.diversity)
    position = params.decode_cursor(query.cursor, fingerprint, {"o": int, "d": int})
    offset, depth = (position["o"], position["d"]) if position else (0, ranked_depth(query.limit))
    if not 0 <= offset <= MAX_OFFSET or not 1 <= depth <= MAX_OFFSET:
        raise params.bad("cursor", "out of range")
    async with request.app[database_key].require().acquire() as conn:
        # The tenant's embedding model, read once: every query of this request uses it, so a model
        # switch (`recommender reembed`) never mixes two models in one answer.
        model, dimension = await request.app[active_models_key].get(conn, tenant_id)
        wanted = Request(tenant_id, model, strategy, filters, query.limit, offset, depth, tuning, query.diversity,
                         dimension)
        page = await recommend(Store(conn, request.app[collaborative_models_key]), wanted, user_id, session)
    more = page.more and offset + query.limit < MAX_OFFSET
    next_cursor = params.encode_cursor({"o": offset + query.limit, "d": depth}, fingerprint) if more else None
    return {"items": render(page), "next_cursor": next_cursor, "strategy": strategy, "model": model}


async def user_recommendations(request: web.Request) -> web.Response:
    tenant_id = tenant_of(request)
    user_id = path_id(request, "user_id")
    query = parse(RecommendationQuery, request.query)
    body = await ranked_page(request, tenant_id, query, ("user", user_id), user_id=user_id)
    return web.json_response({"user_id": user_id, **body})


async def session_recommendations(request: web.Request) -> web.Response:
    """`POST /v1/recommendations`: `{liked, disliked, limit, cursor, strategy, filters, weights, diversity}`."""
    tenant_id = tenant_of(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise params.bad("body", "a JSON object")
    query = parse(SessionBody, body)
    page = await ranked_page(request, tenant_id, query, ("session", sorted(query.liked), sorted(query.disliked)),
                             session=session_history(query.liked, query.disliked))
    return web.json_response(page)


async def similar(request: web.Request) -> web.Response:
    """Nearest products by description: a one-like history, so ranking and paging are shared."""
    tenant_id = tenant_of(request)
    product_id = path_id(request, "product_id")
    query = parse(RecommendationQuery, request.query)
    pool = request.app[database_key].require()
    model, _ = await request.app[active_models_key].get(pool, tenant_id)
    if await products.get_product(pool, tenant_id, model, product_id) is None:
        raise NotFound(f"no product {product_id!r}", [{"field": "product_id", "problem": "unknown product"}])
    page = await ranked_page(request, tenant_id, query, ("similar", product_id),
                             session=session_history([product_id], []), strategy="content")
    return web.json_response({"product_id": product_id, **page})


async def list_users(request: web.Request) -> web.Response:
    tenant_id = tenant_of(request)
    limit = parse(ListQuery, request.query).limit
    found = await users.list_users(request.app[database_key].require(), tenant_id, limit)
    return web.json_response({"items": found})


async def user_interactions(request: web.Request) -> web.Response:
    tenant_id = tenant_of(request)
    user_id = path_id(request, "user_id")
    limit = parse(ListQuery, request.query).limit
    found = await users.interactions(request.app[database_key].require(), tenant_id, user_id, limit)
    if found is None:
        raise NotFound(f"no user {user_id!r}", [{"field": "user_id", "problem": "unknown user"}])
    return web.json_response({"user_id": user_id, "items": found})
