"""Run one embedder worker: `python -m services.embedder [--until-idle SECONDS]`."""
import argparse
import asyncio
import logging
import signal
from contextlib import AsyncExitStack

import aio_pika.exceptions
from aiohttp import web

from services.embedder.dead_queue import record_broker_dead_letters
from services.embedder.encoder import Encoder
from services.embedder.health import create_health_app
from services.embedder.metrics import WorkerMetrics
from services.embedder.models import Encoders, other_encoder
from services.embedder.store import PgStore
from services.embedder.worker import Worker
from shared.amqp import Topology, connect, declare, declare_dead_letter_queue
from shared.db import Database
from shared.logs import configure_logging, redact
from shared.settings import EmbedderSettings

log = logging.getLogger("services.embedder")


async def run(settings: EmbedderSettings, until_idle_s: float | None) -> None:
    # SIGTERM during start-up (loading the model takes seconds) ends the process cleanly too.
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    async with AsyncExitStack() as stack:
        encoder = Encoder.from_settings(settings)
        stack.callback(encoder.close)
        database = Database(settings)
        database.start()
        stack.push_async_callback(database.close)
        while (problem := await database.problem()) is not None:
            if stopping.is_set():
                return
            log.warning("waiting for the database: %s", problem)
            await asyncio.sleep(2)
        store = PgStore(database.pool, settings.model_name)
        await store.register_model(settings.model_name, encoder.dimension)  # fails fast on a dimension clash
        encoders = Encoders(encoder, lambda name: other_encoder(settings, name), store.register_model)
        stack.callback(encoders.close)

        opened = await _open_broker(settings, stopping)
        if opened is None:
            return
        connection, channel, queue, dead_queue = opened
        stack.push_async_callback(connection.close)

        metrics = WorkerMetrics()
        if settings.health_port:
            runner = web.AppRunner(create_health_app(metrics, database.pool, channel, queue))
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            await web.TCPSite(runner, settings.host, settings.health_port).start()

        worker = Worker(settings, queue, store, encoders, metrics)
        await record_broker_dead_letters(dead_queue, store, stopping)
        if stopping.is_set():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        log.info("consuming %s from %s (batch %d, wait %.2fs; %s on %s, %d thread(s))", queue.name,
                 redact(settings.amqp_url), settings.batch_size, settings.batch_wait_s, encoder.backend_name,
                 encoder.device, encoder.threads)
        await worker.run(until_idle_s)
        log.info("worker stopped")


async def _open_broker(settings: EmbedderSettings, stopping: asyncio.Event):
    """(connection, channel, work queue, dead-letter queue), waiting for the broker while it is down;
    None when stopped meanwhile."""
    topology = Topology(settings.amqp_prefix)
    while not stopping.is_set():
        connection = None
        try:
            connection = await connect(settings.amqp_url)
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=settings.batch_size * 2)
            _, queue = await declare(channel, topology)
            return connection, channel, queue, await declare_dead_letter_queue(channel, topology)
        except (OSError, aio_pika.exceptions.AMQPError) as exc:
            if connection is not None:
                await connection.close()
            log.warning("waiting for the broker: %s", exc)
            await asyncio.sleep(2)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description="Embed catalogue descriptions from the queue into pgvector.")
    parser.add_argument("--until-idle", type=float, metavar="SECONDS",
                        help="exit once no message arrived for this long")
    args = parser.parse_args()
    settings = EmbedderSettings()
    configure_logging(settings.log_level, settings.log_json)
    asyncio.run(run(settings, args.until_idle))


if __name__ == "__main__":
    main()
