"""Telling "a dependency is down" from "this request or message fails".

An outage (PostgreSQL or RabbitMQ refusing connections, restarting, failing over, a network blip)
is waited out: HTTP services answer 503 with Retry-After, workers hold their messages and retry
without counting an attempt. Only failures while the dependencies answer count against a message.
"""
import asyncio
import logging
from collections.abc import Awaitable, Callable

import aio_pika.exceptions
import asyncpg
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

log = logging.getLogger(__name__)

# Raised while the database cannot be reached or is going away. OSError covers refused and reset
# connections; the operator-intervention errors are "the database system is starting up / shutting
# down"; InterfaceError is a connection asyncpg already knows is closed.
DATABASE_DOWN: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.TooManyConnectionsError,
)

# Raised while the broker cannot be reached (the channel or connection closed under us).
BROKER_DOWN: tuple[type[BaseException], ...] = (
    aio_pika.exceptions.AMQPConnectionError,
    aio_pika.exceptions.ChannelInvalidStateError,
)

def is_outage(exc: BaseException) -> bool:
    return isinstance(exc, DATABASE_DOWN + BROKER_DOWN)


def backoff_s(attempt: int, base_s: float = 0.5, cap_s: float = 10.0) -> float:
    """Exponential backoff for waiting out an outage: 0.5, 1, 2, 4, 8, 10, 10, ... seconds."""
    return min(cap_s, base_s * 2 ** max(0, attempt - 1))


async def consume(queue: AbstractQueue, callback: Callable[[AbstractIncomingMessage], Awaitable[object]],
                  stopping: asyncio.Event, base_s: float = 0.5) -> str | None:
    """`queue.consume(callback)`, asked again while the broker is down: it may go away just as a
    consumer is asked for (a restart while a worker starts), and the robust connection comes back
    on its own. The consumer tag; None when `stopping` was set first."""
    tries = 0
    while not stopping.is_set():
        try:
            return await queue.consume(callback)
        except BROKER_DOWN as exc:
            tries += 1
            log.warning("broker unreachable while starting to consume %s (%s: %s): asking again",
                        queue.name, type(exc).__name__, exc)
            try:
                await asyncio.wait_for(stopping.wait(), timeout=backoff_s(tries, base_s))
            except asyncio.TimeoutError:
                pass
    return None
