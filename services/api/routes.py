from pathlib import Path

from aiohttp import web

from services.api import rec_views, spike, views

STATIC_DIR = Path(__file__).parent / "static"


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/v1/products", views.browse)
    app.router.add_get("/v1/products/{product_id}", views.get_product)
    app.router.add_get("/v1/products/{product_id}/similar", rec_views.similar)
    app.router.add_get("/v1/genres", views.genres)
    app.router.add_get("/v1/users", rec_views.list_users)
    app.router.add_get("/v1/users/{user_id}/interactions", rec_views.user_interactions)
    app.router.add_get("/v1/users/{user_id}/recommendations", rec_views.user_recommendations)
    app.router.add_post("/v1/recommendations", rec_views.session_recommendations)
    # The spike's routes, kept for its page and scripts.
    app.router.add_get("/api/ping", spike.ping)
    app.router.add_get("/api/products", spike.list_products)
    app.router.add_get("/api/products/recommendation", spike.user_recommendation)
    app.router.add_post("/api/products/recommendation", spike.liked_recommendation)
    # The web page.
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR)
