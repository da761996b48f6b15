"""Train the collaborative model: `python -m services.trainer [--once]`.

Without --once it runs as a service: every TRAIN_CHECK_S it retrains when at least
TRAIN_AFTER_INTERACTIONS new interactions arrived, or when the model is older than TRAIN_EVERY_S
and anything arrived at all. Requests use the stored model plus the user's live history, so a
new like changes the very next response without retraining.
"""
import argparse
import asyncio
import logging
import signal

from aiohttp import web

from services.trainer.job import interactions_since_last_run, train
from shared.db import Database
from shared.http import setup_health
from shared.logs import configure_logging
from shared.settings import TrainerSettings

log = logging.getLogger("services.trainer")


def due(new_interactions: int, age_s: float | None, settings: TrainerSettings) -> bool:
    if new_interactions == 0:
        return False
    return age_s is None or new_interactions >= settings.train_after_interactions or age_s >= settings.train_every_s


async def run(settings: TrainerSettings, once: bool) -> None:
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
            await train(database.pool, settings.tenant_id)
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
    while not stopping.is_set():
        new, age_s = await interactions_since_last_run(database.pool, settings.tenant_id)
        if due(new, age_s, settings):
            await train(database.pool, settings.tenant_id)
        try:
            await asyncio.wait_for(stopping.wait(), timeout=settings.train_check_s)
        except asyncio.TimeoutError:
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the collaborative model from the interactions.")
    parser.add_argument("--once", action="store_true", help="train now and exit")
    args = parser.parse_args()
    settings = TrainerSettings()
    configure_logging(settings.log_level, settings.log_json)
    asyncio.run(run(settings, args.once))


if __name__ == "__main__":
    main()
