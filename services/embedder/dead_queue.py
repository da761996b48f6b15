"""Dead letters the broker made: a message redelivered `x-delivery-limit` times without an ack (the
workers handling it kept dying) lands in the dead-letter queue. Each worker moves those into the
`dead_letters` table, like its own, so one place lists them and the product shows `failed`."""
import asyncio
import logging

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from services.embedder.handler import Store, dead_letter_row, parse
from shared import outages
from shared.errors import PermanentError

log = logging.getLogger(__name__)


async def record_broker_dead_letters(queue: AbstractQueue, store: Store, stopping: asyncio.Event,
                                     retry_s: float = 2.0) -> str | None:
    """Start consuming the dead-letter queue (asking again while the broker is down); returns the
    consumer tag, None when `stopping` was set first."""

    async def on_message(incoming: AbstractIncomingMessage) -> None:
        try:
            message = parse(incoming.body)
        except PermanentError:
            message = None
        deaths = (incoming.headers or {}).get("x-death") or [{}]
        why = deaths[0].get("reason", "unknown") if isinstance(deaths[0], dict) else "unknown"
        row = dead_letter_row(incoming, message, f"dead-lettered by the broker ({why}): delivered again and again"
                              " without an acknowledgement, the worker handling it kept stopping", attempts=0)
        try:
            await store.dead_letter([row])
        except Exception as exc:  # the database is down: keep it in the queue and try again later
            log.warning("could not record a dead letter from the broker: %s", exc)
            await asyncio.sleep(retry_s)
            await incoming.nack(requeue=True)
            return
        log.error("dead letter from the broker: %s", row.reason, extra={"message_id": row.message_id})
        await incoming.ack()

    return await outages.consume(queue, on_message, stopping)
