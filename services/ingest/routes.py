from aiohttp import web

from services.ingest import interaction_views, views


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/v1/products", views.post_products)
    app.router.add_put("/v1/products/{product_id}", views.put_product)
    app.router.add_delete("/v1/products/{product_id}", views.delete_product)
    app.router.add_post("/v1/users/{user_id}/interactions", interaction_views.post_interactions)
    app.router.add_post("/v1/orders", interaction_views.post_order)
