"""The ingest service: accepts catalogue writes over HTTP and publishes them to the queue."""
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from services.ingest.backlog import Backlog
from services.ingest.keys import backlog_key, database_key, publisher_key, settings_key, version_clock_key
from services.ingest.publisher import Publisher
from services.ingest.routes import setup_routes
from shared import catalog
from shared.amqp import Broker, Topology
from shared.auth import KeyCache, Policy, public, setup_auth
from shared.db import Database
from shared.http import errors_middleware, setup_health, setup_metrics
from shared.schemas import VersionClock
from shared.settings import IngestSettings


@dataclass
class Deps:
    """What tests may inject instead of the real broker and database."""

    publisher: Publisher
    database: Database
    backlog: Backlog | None = None  # None: no limit
    keys: KeyCache | None = None  # default: keys looked up in the database


async def _broker_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    broker = Broker(settings.amqp_url, Topology(settings.amqp_prefix))
    broker.start()
    app[publisher_key] = Publisher(broker, settings.publish_timeout_s)
    app[backlog_key] = Backlog(broker, settings.max_backlog, settings.backlog_retry_after_s,
                               max_tenant_backlog=settings.max_tenant_backlog,
                               tenant_pending=lambda tenant_id: _tenant_pending(app, tenant_id))
    yield
    await broker.close()


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    database = Database(app[settings_key])
    database.start()
    app[database_key] = database
    yield
    await database.close()


async def _tenant_pending(app: web.Application, tenant_id: str) -> int:
    return await catalog.pending_count(app[database_key].require(), tenant_id, app[settings_key].model_name)


def create_app(settings: IngestSettings, deps: Deps | None = None) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[errors_middleware])
    app[settings_key] = settings
    app[version_clock_key] = VersionClock()
    if deps is None:
        app.cleanup_ctx.extend([_database_ctx, _broker_ctx])
    else:
        app[publisher_key] = deps.publisher
        app[database_key] = deps.database
        if deps.backlog is not None:
            app[backlog_key] = deps.backlog
    setup_metrics(app, "ingest", lambda: app[database_key].in_use())
    setup_health(app, [lambda: app[database_key].problem(), lambda: app[publisher_key].problem()])
    setup_auth(app, settings, lambda: app[database_key].require(),
               Policy(lambda request: None if public(settings, request) else "write"), deps and deps.keys)
    setup_routes(app, settings.max_batch)
    return app
