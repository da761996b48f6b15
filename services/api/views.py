from aiohttp import web

from services.api import products
from services.api.keys import database_key, settings_key
from shared.errors import NotFound


async def get_product(request: web.Request) -> web.Response:
    settings = request.app[settings_key]
    product_id = request.match_info["product_id"]
    pool = request.app[database_key].require()
    product = await products.get_product(pool, settings.tenant_id, settings.model_name, product_id)
    if product is None:
        raise NotFound(f"no product {product_id!r}", [{"field": "id", "problem": "unknown product"}])
    return web.json_response(product)
