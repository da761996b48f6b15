"""The api gateway: recommendation queries, the catalogue, the web page and the spike's routes."""
from collections.abc import AsyncIterator

from aiohttp import web

from services.api.keys import active_models_key, collaborative_models_key, database_key, settings_key
from services.api.neighbours import CollaborativeModels
from services.api.routes import setup_routes
from services.api.store import MAX_SCAN_TUPLES
from services.api.tenant_models import ActiveModels
from shared.auth import KeyCache, Policy, public, setup_auth
from shared.db import Database
from shared.http import errors_middleware, setup_health, setup_metrics
from shared.settings import ApiSettings


def query_settings(settings: ApiSettings) -> dict[str, str]:
    """Session settings of the api's connections: the HNSW search breadth, iterative index scans
    so filtered queries still fill their lists (giving up after `store.MAX_SCAN_TUPLES` for the
    exact query over the few products that pass), and a custom plan per call (a generic plan cannot
    see which filters are unset and may trade the index for an exact scan). No JIT compilation and
    no parallel workers: at 100,000 products the planner's cost estimates crossed the JIT threshold
    and compiling took longer than the query, and starting workers costs more than a request's
    index lookups save."""
    return {
        "hnsw.ef_search": str(settings.ef_search),
        "hnsw.iterative_scan": "relaxed_order",
        "hnsw.max_scan_tuples": str(MAX_SCAN_TUPLES),
        "plan_cache_mode": "force_custom_plan",
        "jit": "off",
        "max_parallel_workers_per_gather": "0",
    }


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    # The api's queries leave no session state: a connection goes back to the pool without a reset.
    database = Database(app[settings_key], server_settings=query_settings(app[settings_key]), keep_session=True)
    database.start()
    app[database_key] = database
    yield
    await database.close()


def create_app(settings: ApiSettings, database: Database | None = None,
               keys: KeyCache | None = None) -> web.Application:
    """`database` and `keys` (the key lookups) are for tests; by default both come from DATABASE_URL."""
    # Request lines up to 128 KiB (aiohttp's default is 8 KiB): the longest documented query string
    # gets the JSON 400 naming a parameter rather than a plain-text refusal before routing.
    app = web.Application(middlewares=[errors_middleware], handler_args={"max_line_size": 131072})
    app[settings_key] = settings
    app[active_models_key] = ActiveModels(settings.model_name)
    app[collaborative_models_key] = CollaborativeModels(settings.collaborative_cache_tenants)
    if database is None:
        app.cleanup_ctx.append(database_ctx)
    else:
        app[database_key] = database
    setup_metrics(app, "api", lambda: app[database_key].in_use())
    setup_health(app, [lambda: app[database_key].problem()])
    setup_auth(app, settings, lambda: app[database_key].require(), auth_policy(settings), keys)
    setup_routes(app)
    return app


def auth_policy(settings: ApiSettings) -> Policy:
    """Everything reads (role read) but the web page and its assets; in demo mode the spike's routes
    answer without a key, for the demo tenant."""

    def role_for(request: web.Request) -> str | None:
        return None if request.path == "/" or public(settings, request, ("/static/",)) else "read"

    def keyless_tenant(request: web.Request) -> str | None:
        return settings.demo_tenant if settings.spike_routes_open and request.path.startswith("/api/") else None

    return Policy(role_for, keyless_tenant)
