"""Recommendation endpoints: for a known user, for an anonymous session, similar products."""
import re
from datetime import datetime, timezone

from aiohttp import web

from services.api import params, products, users
from services.api.keys import database_key, settings_key
from services.api.pages import diversity, ranked_page, strategy, tuning
from shared.interactions import History, Interaction
from shared.errors import NotFound
from shared.http import read_json
from shared.schemas import ID_PATTERN

ANONYMOUS_FIELDS = {"liked", "disliked", "limit", "cursor", "strategy", "filters"}


def _path_id(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if not re.fullmatch(ID_PATTERN, value):
        raise params.bad(name, "1-128 characters: letters, digits and . _ : - (not first)")
    return value


def session_history(liked: list[str], disliked: list[str]) -> History:
    """An anonymous session: likes and dislikes all at one instant (a product in both is disliked)."""
    now = datetime.now(timezone.utc)
    return History.of([Interaction(pid, "like", None, now) for pid in liked]
                      + [Interaction(pid, "dislike", None, now) for pid in disliked])


async def user_recommendations(request: web.Request) -> web.Response:
    user_id = _path_id(request, "user_id")
    query = request.query
    limit, filters, chosen = params.limit(query), params.filters(query), strategy(query)
    body = await ranked_page(request, None, filters, chosen, limit, query.get("cursor"), ("user", user_id), user_id,
                             tuning(query), diversity(query))
    return web.json_response({"user_id": user_id, **body})


async def session_recommendations(request: web.Request) -> web.Response:
    """`POST /v1/recommendations`: `{liked, disliked, limit, cursor, strategy, filters}`."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise params.bad("body", "a JSON object")
    if unknown := sorted(set(body) - ANONYMOUS_FIELDS):
        raise params.bad(unknown[0], f"unknown field; allowed: {', '.join(sorted(ANONYMOUS_FIELDS))}")
    raw_filters = body.get("filters") or {}
    if not isinstance(raw_filters, dict):
        raise params.bad("filters", "an object with genre, year_from, year_to, exclude")
    liked, disliked = params.id_list(body.get("liked"), "liked"), params.id_list(body.get("disliked"), "disliked")
    limit, filters, chosen = params.limit(body), params.filters(raw_filters, "filters."), strategy(body)
    cursor = body.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise params.bad("cursor", "a string from next_cursor")
    page = await ranked_page(request, session_history(liked, disliked), filters, chosen, limit, cursor,
                             ("session", sorted(liked), sorted(disliked)))
    return web.json_response(page)


async def similar(request: web.Request) -> web.Response:
    """Nearest products by description: a one-like history, so ranking and paging are shared."""
    product_id = _path_id(request, "product_id")
    settings = request.app[settings_key]
    pool = request.app[database_key].require()
    if await products.get_product(pool, settings.tenant_id, settings.model_name, product_id) is None:
        raise NotFound(f"no product {product_id!r}", [{"field": "product_id", "problem": "unknown product"}])
    query = request.query
    limit, filters = params.limit(query), params.filters(query)
    page = await ranked_page(request, session_history([product_id], []), filters, "content", limit,
                             query.get("cursor"), ("similar", product_id))
    return web.json_response({"product_id": product_id, **page})


async def list_users(request: web.Request) -> web.Response:
    limit = params.integer(request.query, "limit", 100, 1, 1000)
    found = await users.list_users(request.app[database_key].require(), request.app[settings_key].tenant_id, limit)
    return web.json_response({"items": found})


async def user_interactions(request: web.Request) -> web.Response:
    user_id = _path_id(request, "user_id")
    limit = params.integer(request.query, "limit", 100, 1, 1000)
    found = await users.interactions(request.app[database_key].require(), request.app[settings_key].tenant_id,
                                     user_id, limit)
    if found is None:
        raise NotFound(f"no user {user_id!r}", [{"field": "user_id", "problem": "unknown user"}])
    return web.json_response({"user_id": user_id, "items": found})
