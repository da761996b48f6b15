"""The api route table: what the app serves and what its /openapi.json documents."""
import html
from pathlib import Path

from aiohttp import web

from services.api import query as q, rec_views, responses as r, spike, views
from services.api.keys import settings_key
from shared.openapi import Route, add_routes, setup_docs

STATIC_DIR = Path(__file__).parent / "static"


async def index(request: web.Request) -> web.Response:
    """The page, told the mode and the read key it sends (PAGE_KEY; demo mode's read key)."""
    settings = request.app[settings_key]
    meta = f'<meta name="recommender-mode" content="{settings.mode}">'
    if settings.page_key is not None:
        meta += f'\n<meta name="recommender-key" content="{html.escape(settings.page_key.get_secret_value())}">'
    page = (STATIC_DIR / "index.html").read_text().replace("<head>", f"<head>\n{meta}", 1)
    return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})


ROUTES = [
    Route("GET", "/v1/products", views.browse, "Browse and search the catalogue", "catalogue", r.ProductPage,
          query=q.BrowseQuery, role="read", description="Title match, in title order, page by page."),
    Route("GET", "/v1/products/{product_id}", views.get_product, "One product", "catalogue", r.Product,
          errors=(404,), role="read"),
    Route("GET", "/v1/products/{product_id}/similar", rec_views.similar, "Products similar to one", "recommendations",
          r.SimilarProducts, query=q.RecommendationQuery, errors=(404,), role="read"),
    Route("GET", "/v1/genres", views.genres, "Genres with their product counts", "catalogue", r.Genres, role="read"),
    Route("GET", "/v1/users", rec_views.list_users, "Users with their interaction counts", "users", r.Users,
          query=q.ListQuery, role="read"),
    Route("GET", "/v1/users/{user_id}/interactions", rec_views.user_interactions, "A user's newest interactions",
          "users", r.UserInteractions, query=q.ListQuery, errors=(404,), role="read"),
    Route("GET", "/v1/users/{user_id}/recommendations", rec_views.user_recommendations,
          "Personal recommendations", "recommendations", r.UserRecommendations, query=q.RecommendationQuery,
          role="read", description="From the user's stored history; an unknown user gets popular products."),
    Route("POST", "/v1/recommendations", rec_views.session_recommendations,
          "Recommendations for an anonymous session", "recommendations", r.Recommendations,
          body=q.SessionBody, role="read"),
    Route("GET", "/api/ping", spike.ping, "The spike's ping", "spike", r.Pong, role="read"),
    Route("GET", "/api/products", spike.list_products, "The spike's product list", "spike", r.SpikeProducts,
          role="read"),
    Route("GET", "/api/products/recommendation", spike.user_recommendation, "The spike's user recommendations",
          "spike", r.SpikeRecommendations, query=spike.SpikeUserQuery, role="read"),
    Route("POST", "/api/products/recommendation", spike.liked_recommendation, "The spike's liked-list recommendations",
          "spike", r.SpikeRecommendations, body=spike.SpikeLikedBody, role="read"),
]


def setup_routes(app: web.Application) -> None:
    add_routes(app, ROUTES)
    setup_docs(app, "Recommender api", "1", "Recommendations, the catalogue and users.")
    # The web page.
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR)
