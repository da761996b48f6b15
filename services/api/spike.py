"""The spike's routes, same paths and JSON shapes, now served by the real recommender.

Products carry the spike's fields: `id` (a number when the id is one), `name`, `description`,
`rating` (the product's `metadata.rating`, or null).
"""
from pydantic import BaseModel, ConfigDict, Field

from aiohttp import web

from services.api import params, products
from services.api.keys import database_key
from services.api.query import Limit, ProductIds, RecommendationQuery, parse
from services.api.rec_views import ranked_page, session_history
from shared.auth import tenant_of
from shared.http import read_json
from shared.schemas import ProductId

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


class SpikeUserQuery(BaseModel):
    users_id: ProductId = Field(description="The user's id (letters, digits and . _ : -).")
    limit: Limit = 10


class SpikeLikedBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    products: ProductIds = Field(description="Liked product ids.")
    limit: Limit = 10


async def list_products(request: web.Request) -> web.Response:
    found = await products.list_all(request.app[database_key].require(), tenant_of(request), MAX_PRODUCTS)
    return web.json_response([spike_product(product) for product in found])


async def user_recommendation(request: web.Request) -> web.Response:
    """`GET /api/products/recommendation?users_id=N`: from that user's whole history."""
    tenant_id = tenant_of(request)
    query = parse(SpikeUserQuery, request.query)
    page = await ranked_page(request, tenant_id, RecommendationQuery(limit=query.limit), ("spike-user", query.users_id),
                             user_id=query.users_id)
    return web.json_response(_spike_items(page))


async def liked_recommendation(request: web.Request) -> web.Response:
    """`POST /api/products/recommendation` with `{"products": [ids]}`: for an ad-hoc liked list."""
    tenant_id = tenant_of(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise params.bad("products", "required: a list of liked product ids")
    query = parse(SpikeLikedBody, body)
    page = await ranked_page(request, tenant_id, RecommendationQuery(limit=query.limit),
                             ("spike-liked", sorted(query.products)), session=session_history(query.products, []))
    return web.json_response(_spike_items(page))
