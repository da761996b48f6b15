"""The worker's small HTTP side: /health/live, /health/ready and /metrics."""
import asyncio

from aiohttp import web
from aio_pika.abc import AbstractChannel, AbstractQueue
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.embedder.metrics import WorkerMetrics
from shared import dead_letters
from shared.db import pool_in_use
from shared.http import setup_health


def create_health_app(metrics: WorkerMetrics, pool, channel: AbstractChannel, queue: AbstractQueue) -> web.Application:
    app = web.Application()

    async def database_problem() -> str | None:
        try:
            await asyncio.wait_for(pool.fetchval("SELECT 1"), timeout=2)
        except Exception as exc:
            return f"database unreachable: {exc}"
        return None

    async def broker_problem() -> str | None:
        return "broker channel closed" if channel.is_closed else None

    async def metrics_view(request: web.Request) -> web.Response:
        try:
            # Declaring again with the same arguments is a no-op that reports the current depth (a passive
            # declare on a robust channel answers from its cache, with the depth seen at start-up).
            declared = await queue.declare()
            metrics.queue_depth.set(declared.message_count)
        except Exception:
            pass  # leave the last known depth; readiness reports the broker
        try:
            metrics.dead_letters.set(await asyncio.wait_for(dead_letters.count(pool), timeout=2))
        except Exception:
            pass  # leave the last known count; readiness reports the database
        metrics.db_pool_in_use.set(pool_in_use(pool))
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    setup_health(app, [database_problem, broker_problem])
    app.router.add_get("/metrics", metrics_view)
    return app
