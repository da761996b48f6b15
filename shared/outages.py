"""Telling "a dependency is down" from "this request or message fails".

An outage (PostgreSQL or RabbitMQ refusing connections, restarting, failing over, a network blip)
is waited out: HTTP services answer 503 with Retry-After, workers hold their messages and retry
without counting an attempt. Only failures while the dependencies answer count against a message.
"""
import asyncio

import aio_pika.exceptions
import asyncpg

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
