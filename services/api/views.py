"""The catalogue: one product, browse and search, genres."""
from aiohttp import web

from services.api import params, products
from services.api.keys import active_models_key, database_key
from services.api.query import BrowseQuery, parse
from shared.auth import tenant_of
from shared.errors import NotFound


async def get_product(request: web.Request) -> web.Response:
    tenant_id = tenant_of(request)
    product_id = request.match_info["product_id"]
    pool = request.app[database_key].require()
    model, _ = await request.app[active_models_key].get(pool, tenant_id)
    product = await products.get_product(pool, tenant_id, model, product_id)
    if product is None:
        raise NotFound(f"no product {product_id!r}", [{"field": "id", "problem": "unknown product"}])
    return web.json_response(product)


async def browse(request: web.Request) -> web.Response:
    """`GET /v1/products?query=&genre=&limit=&cursor=`: title match, in title order."""
    tenant_id = tenant_of(request)
    query = parse(BrowseQuery, request.query)
    fingerprint = params.fingerprint(tenant_id, "browse", query.query, query.genre)  # refused for another tenant
    position = params.decode_cursor(query.cursor, fingerprint, {"t": str, "i": str})
    after = (position["t"], position["i"]) if position else None
    pool = request.app[database_key].require()
    model, _ = await request.app[active_models_key].get(pool, tenant_id)
    items, next_key = await products.browse(pool, tenant_id, model, query.query, query.genre, after, query.limit)
    next_cursor = params.encode_cursor({"t": next_key[0], "i": next_key[1]}, fingerprint) if next_key else None
    return web.json_response({"items": items, "next_cursor": next_cursor})


async def genres(request: web.Request) -> web.Response:
    found = await products.genres(request.app[database_key].require(), tenant_of(request))
    return web.json_response({"items": found})
