from aiohttp import web

from services.api import views


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/v1/products/{product_id}", views.get_product)
