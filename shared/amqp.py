"""AMQP topology and the robust connection every role uses.

    {prefix}.products        direct exchange; routing key "product"
    {prefix}.products.embed  quorum queue the embedder workers share; rejects go to the DLX
    {prefix}.products.dlx    fanout exchange for dead letters
    {prefix}.products.dead   where dead letters wait for a person (or a re-drive)

Quorum queues are durable and replicated; `x-delivery-limit` dead-letters a message that keeps
coming back (a worker that crashes on it), so nothing is requeued in a hot loop.
"""
import asyncio
import logging
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue, AbstractRobustConnection

from shared.logs import redact
from shared.schemas import ProductMessage

ROUTING_KEY = "product"
DELIVERY_LIMIT = 10
# Seconds between reconnection tries after the broker went away (aio-pika's default is 5).
RECONNECT_INTERVAL_S = 1.0

log = logging.getLogger(__name__)


def amqp_message(message: ProductMessage) -> aio_pika.Message:
    """A catalogue write as a persistent JSON message."""
    return aio_pika.Message(body=message.model_dump_json().encode(), content_type="application/json",
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=message.message_id,
                            type=message.type)


async def connect(url: str) -> AbstractRobustConnection:
    """A robust connection: reconnects by itself and replays channels, topology and consumers."""
    return await aio_pika.connect_robust(url, reconnect_interval=RECONNECT_INTERVAL_S)


@dataclass(frozen=True)
class Topology:
    prefix: str

    @property
    def exchange(self) -> str:
        return f"{self.prefix}.products"

    @property
    def queue(self) -> str:
        return f"{self.prefix}.products.embed"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.prefix}.products.dlx"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.prefix}.products.dead"


async def declare(channel: AbstractChannel, topology: Topology) -> tuple[AbstractExchange, AbstractQueue]:
    """Declare everything (idempotent); return the products exchange and the work queue."""
    await declare_dead_letter_queue(channel, topology)
    exchange = await channel.declare_exchange(topology.exchange, aio_pika.ExchangeType.DIRECT, durable=True)
    queue = await channel.declare_queue(
        topology.queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": topology.dead_letter_exchange,
            "x-delivery-limit": DELIVERY_LIMIT,
        },
    )
    await queue.bind(exchange, ROUTING_KEY)
    return exchange, queue


async def declare_dead_letter_queue(channel: AbstractChannel, topology: Topology) -> AbstractQueue:
    """The dead-letter exchange and queue (idempotent); returns the queue."""
    dlx = await channel.declare_exchange(topology.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True)
    dead = await channel.declare_queue(topology.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"})
    await dead.bind(dlx)
    return dead


async def delete_topology(amqp_url: str, topology: Topology) -> None:
    """Delete the queues and exchanges of a prefix (a test's or a benchmark's throwaway names)."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for queue in (topology.queue, topology.dead_letter_queue):
            await channel.queue_delete(queue)
        for exchange in (topology.exchange, topology.dead_letter_exchange):
            await channel.exchange_delete(exchange)


class Broker:
    """A robust connection with publisher confirms, opened in the background.

    The service starts even while the broker is down; `problem` says why it is not ready, and
    aio-pika replays the topology after every reconnect.
    """

    def __init__(self, url: str, topology: Topology, retry_s: float = 2.0):
        self.url = url
        self.topology = topology
        self.retry_s = retry_s
        self.connection: AbstractRobustConnection | None = None
        self.channel: AbstractChannel | None = None
        self.exchange: AbstractExchange | None = None
        self.queue: AbstractQueue | None = None
        self._last_error = "connecting"
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect())

    async def _connect(self) -> None:
        while True:
            try:
                self.connection = await connect(self.url)
                self.channel = await self.connection.channel(publisher_confirms=True)
                self.exchange, self.queue = await declare(self.channel, self.topology)
                log.info("connected to broker %s", redact(self.url))
                return
            except (OSError, aio_pika.exceptions.AMQPError) as exc:
                self._last_error = f"broker unreachable: {exc or type(exc).__name__}"
                if self.connection is not None:
                    await self.connection.close()
                    self.connection = None
                await asyncio.sleep(self.retry_s)

    @property
    def problem(self) -> str | None:
        """None when ready to publish, else the reason."""
        if self.exchange is None or self.connection is None:
            return self._last_error
        if self.connection.is_closed or not self.connection.connected.is_set():
            return "broker connection lost, reconnecting"
        return None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.connection is not None:
            await self.connection.close()
