"""Train the collaborative model: `python -m services.trainer [--once]`.

Every tenant is trained on its own: --once trains each tenant that has interactions (or only
--tenant) and exits. As a service, every TRAIN_CHECK_S it looks at each tenant and retrains one
when at least TRAIN_AFTER_INTERACTIONS new interactions arrived, or when its model is older than
TRAIN_EVERY_S and anything arrived at all. Up to TRAIN_CONCURRENCY tenants train at once, each in
a task of its own: a tenant whose big catalogue trains for an hour holds one slot, the others keep
theirs and are checked on schedule. Requests never wait for training (they read the last stored
model plus the user's live history), so a new like changes the very next response anyway.
"""
import argparse
import asyncio
import logging
import signal

from aiohttp import web

from services.trainer.job import interactions_since_last_run, tenants_with_interactions, train
from shared.db import Database
from shared.http import setup_health
from shared.logs import configure_logging
from shared.settings import TrainerSettings

log = logging.getLogger("services.trainer")


def due(new_interactions: int, age_s: float | None, settings: TrainerSettings) -> bool:
    if new_interactions == 0:
        return False
    return age_s is None or new_interactions >= settings.train_after_interactions or age_s >= settings.train_every_s


async def run(settings: TrainerSettings, once: bool, tenant: str | None = None) -> None:
    database = Database(settings)
    database.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        while (problem := await database.problem()) is not None:
            log.warning("waiting for the database: %s", problem)
            await asyncio.sleep(2)
        if once:
            for tenant_id in [tenant] if tenant else await tenants_with_interactions(database.pool):
                log.info("training tenant %s", tenant_id)
                await train(database.pool, tenant_id)
            return
        runner = await _serve_health(settings, database)
        try:
            await _train_when_due(settings, database, stopping)
        finally:
            await runner.cleanup()
    finally:
        await database.close()


async def _serve_health(settings: TrainerSettings, database: Database) -> web.AppRunner:
    app = web.Application()
    setup_health(app, [database.problem])
    runner = web.AppRunner(app)
    await runner.setup()
    if settings.health_port:
        await web.TCPSite(runner, settings.host, settings.health_port).start()
    return runner


async def _train_when_due(settings: TrainerSettings, database: Database, stopping: asyncio.Event) -> None:
    slots = asyncio.Semaphore(settings.train_concurrency)
    running: dict[str, asyncio.Task] = {}
    try:
        while not stopping.is_set():
            for tenant_id in await tenants_with_interactions(database.pool):
                if tenant_id in running:
                    continue  # still training (or waiting for a slot): checked again next round
                new, age_s = await interactions_since_last_run(database.pool, tenant_id)
                if due(new, age_s, settings):
                    running[tenant_id] = asyncio.create_task(_train_one(database, tenant_id, slots))
                    running[tenant_id].add_done_callback(lambda task, t=tenant_id: running.pop(t, None))
            try:
                await asyncio.wait_for(stopping.wait(), timeout=settings.train_check_s)
            except asyncio.TimeoutError:
                pass
    finally:
        if running:  # let trainings in progress finish: each replaces its tables in one transaction
            await asyncio.gather(*running.values(), return_exceptions=True)


async def _train_one(database: Database, tenant_id: str, slots: asyncio.Semaphore) -> None:
    async with slots:
        try:
            await train(database.pool, tenant_id)
        except Exception:
            log.exception("training tenant %s failed; it is retried at the next check", tenant_id)


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the collaborative model from the interactions.")
    parser.add_argument("--once", action="store_true", help="train every tenant with interactions now and exit")
    parser.add_argument("--tenant", help="with --once: only this tenant")
    args = parser.parse_args()
    settings = TrainerSettings()
    configure_logging(settings.log_level, settings.log_json)
    asyncio.run(run(settings, args.once, args.tenant))


if __name__ == "__main__":
    main()
