"""The spike's routes, same paths and JSON shapes, now served by the real recommender.

Products carry the spike's fields: `id` (a number when the id is one), `name`, `description`,
`rating` (the product's `metadata.rating`, or null).
"""
import json
import re

from aiohttp import web

from services.api import params
from services.api.candidates import Filters
from services.api.keys import database_key, settings_key
from services.api.pages import ranked_page
from services.api.rec_views import session_history
from services.api.recommend import DEFAULT_STRATEGY
from shared.http import read_json
from shared.schemas import ID_PATTERN

MAX_PRODUCTS = 10_000  # the spike listed the whole catalogue; this bounds the answer


def spike_product(product: dict) -> dict:
    pid = product["id"]
    rating = product.get("metadata", {}).get("rating")
    return {
        "id": int(pid) if pid.isdigit() and str(int(pid)) == pid else pid,
        "name": product["title"],
        "description": product["description"],
        "rating": rating if isinstance(rating, (int, float)) and not isinstance(rating, bool) else None,
    }


def _spike_items(page: dict) -> list[dict]:
    return [{"product": spike_product(item["product"]), "similarity": item["score"]} for item in page["items"]]


async def ping(request: web.Request) -> web.Response:
    return web.json_response({"message": "Pong!"})


async def list_products(request: web.Request) -> web.Response:
    rows = await request.app[database_key].require().fetch(
        "SELECT id, title, description, metadata FROM products WHERE tenant_id = $1 AND NOT deleted"
        " ORDER BY id LIMIT $2",
        request.app[settings_key].tenant_id,
        MAX_PRODUCTS,
    )
    return web.json_response([
        spike_product({"id": r["id"], "title": r["title"], "description": r["description"],
                       "metadata": json.loads(r["metadata"])})
        for r in rows
    ])


async def user_recommendation(request: web.Request) -> web.Response:
    """`GET /api/products/recommendation?users_id=N`: from that user's whole history."""
    user_id = request.query.get("users_id", "")
    if not re.fullmatch(ID_PATTERN, user_id):
        raise params.bad("users_id", "required: the user's id (letters, digits and . _ : -)")
    limit = params.limit(request.query)
    page = await ranked_page(request, None, Filters(), DEFAULT_STRATEGY, limit, None, ("spike-user", user_id), user_id)
    return web.json_response(_spike_items(page))


async def liked_recommendation(request: web.Request) -> web.Response:
    """`POST /api/products/recommendation` with `{"products": [ids]}`: for an ad-hoc liked list."""
    body = await read_json(request)
    if not isinstance(body, dict) or "products" not in body:
        raise params.bad("products", "required: a list of liked product ids")
    liked = params.id_list(body["products"], "products")
    limit = params.limit(body)
    page = await ranked_page(request, session_history(liked, []), Filters(), DEFAULT_STRATEGY, limit, None,
                             ("spike-liked", sorted(liked)))
    return web.json_response(_spike_items(page))
