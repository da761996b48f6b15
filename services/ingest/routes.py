"""The ingest route table: what the app serves and what its /openapi.json documents."""
from aiohttp import web

from services.ingest import interaction_views, views
from services.ingest.responses import Accepted, InteractionsStored, OrderStored
from shared.openapi import Route, add_routes, setup_docs
from shared.schemas import InteractionIn, OrderIn, ProductIn

ROUTES = [
    Route("POST", "/v1/products", views.post_products, "Add or replace products", "products", Accepted, 202,
          body=ProductIn, batch=True, errors=(429,), role="write",
          description="One product or an array of them, all valid or none accepted (a 422 names every bad field)."
                      " 202: queued durably; each product shows as `pending` until embedded. 429 while the tenant has too many"
                      " products waiting to be embedded, 503 while the whole queue is full (both with Retry-After)."),
    Route("PUT", "/v1/products/{product_id}", views.put_product, "Add or replace one product", "products",
          Accepted, 202, body=ProductIn, errors=(429,), role="write"),
    Route("DELETE", "/v1/products/{product_id}", views.delete_product, "Delete a product", "products",
          Accepted, 202, errors=(422,), role="write"),
    Route("POST", "/v1/users/{user_id}/interactions", interaction_views.post_interactions, "Record interactions",
          "users", InteractionsStored, 201, body=InteractionIn, batch=True, role="write",
          description="One interaction or an array, stored all or none; a 422 names products not in the catalogue."),
    Route("POST", "/v1/orders", interaction_views.post_order, "Record an order", "users", OrderStored, 201,
          body=OrderIn, role="write", description="One purchase per item; with `order_id`, posting it again stores nothing new."),
]


def setup_routes(app: web.Application, max_batch: int) -> None:
    add_routes(app, ROUTES)
    setup_docs(app, "Recommender ingest", "1", "Catalogue and interaction writes.", max_batch)
