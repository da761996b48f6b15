"""The consume loop: gather messages into batches, handle each batch, ack only after the commit.

Jobs may run more than once (at-least-once delivery); handling is idempotent.

Two kinds of failure are told apart:
- the database is unreachable (refused, restarting, failing over): the batch is held unacked and
  retried with backoff until the database answers again, however long that takes, and no attempt
  is counted. Holding (rather than requeueing) keeps the quorum queue's delivery count, which
  dead-letters at `x-delivery-limit`, untouched. Only an outage longer than `outage_hold_s` (kept
  under the broker's `consumer_timeout`) makes the worker hand its messages back and stop
  consuming until the database returns: one delivery counted per outage, not one per retry.
- the message fails while the database answers: retried `max_attempts` times with backoff, then
  dead-lettered (recorded in the `dead_letters` table, the product shows `failed`). An unparseable
  message is dead-lettered at once.

`stop()` (SIGTERM) stops taking messages, finishes the batch in hand and returns.
"""
import asyncio
import logging
import time

import asyncpg
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from services.embedder.handler import Store, TextEncoders, dead_letter_row, handle_batch, parse
from services.embedder.metrics import WorkerMetrics
from shared.errors import PermanentError, RetryableError
from shared.outages import backoff_s, is_outage
from shared.schemas import ProductMessage
from shared.settings import EmbedderSettings

log = logging.getLogger(__name__)

# Failures worth retrying while the database answers (a deadlock, a concurrent vector write).
TRANSIENT = (RetryableError, asyncpg.TransactionRollbackError, asyncpg.InsufficientResourcesError)

Parsed = list[tuple[AbstractIncomingMessage, ProductMessage]]


class Released(Exception):
    """The messages in hand went back to the queue (stopping, or an outage held them too long)."""


class Worker:
    def __init__(self, settings: EmbedderSettings, queue: AbstractQueue, store: Store, encoder: TextEncoders,
                 metrics: WorkerMetrics):
        self.settings = settings
        self.queue = queue
        self.store = store
        self.encoder = encoder
        self.metrics = metrics
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._stopping = asyncio.Event()
        self._tag: str | None = None

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, until_idle_s: float | None = None) -> None:
        """Consume until stop(), or until nothing arrived for `until_idle_s` seconds."""
        self._tag = await self.queue.consume(self._inbox.put)
        idle_since = time.monotonic()
        try:
            while not self._stopping.is_set():
                batch = await self._collect()
                if batch:
                    try:
                        await self._process(batch)
                    except Released:
                        pass
                    idle_since = time.monotonic()
                elif until_idle_s is not None and time.monotonic() - idle_since >= until_idle_s:
                    break
        finally:
            await self._stop_consuming()

    async def _stop_consuming(self) -> None:
        """Cancel the consumer; what was delivered but never started goes back to the queue."""
        if self._tag is not None:
            tag, self._tag = self._tag, None
            try:
                await self.queue.cancel(tag)
            except Exception as exc:  # the channel is gone: the broker returns the messages itself
                log.warning("cancelling the consumer failed: %s", exc)
        while not self._inbox.empty():
            await _settle(self._inbox.get_nowait(), requeue=True)

    async def _collect(self) -> list[AbstractIncomingMessage]:
        """Up to batch_size messages: wait for the first, then at most batch_wait_s for the rest."""
        stop = asyncio.ensure_future(self._stopping.wait())
        first = asyncio.ensure_future(self._inbox.get())
        done, _ = await asyncio.wait({stop, first}, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if first not in done:
            first.cancel()
            return []
        batch = [first.result()]
        deadline = time.monotonic() + self.settings.batch_wait_s
        while len(batch) < self.settings.batch_size:
            try:
                batch.append(await asyncio.wait_for(self._inbox.get(), timeout=max(0, deadline - time.monotonic())))
            except asyncio.TimeoutError:
                break
        # Deliveries from a channel that closed (broker restart) are redelivered on the new one.
        return [message for message in batch if not _channel_closed(message)]

    async def _process(self, batch: list[AbstractIncomingMessage]) -> None:
        self.metrics.consumed.inc(len(batch))
        parsed: Parsed = []
        for incoming in batch:
            try:
                parsed.append((incoming, parse(incoming.body)))
            except PermanentError as exc:
                await self._dead_letter([(incoming, None)], str(exc), attempts=1)
        if parsed:
            await self._handle(parsed)

    async def _handle(self, parsed: Parsed) -> None:
        incoming = [pair[0] for pair in parsed]
        messages = [pair[1] for pair in parsed]
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                outcome = await handle_batch(messages, self.store, self.encoder)
                break
            except Exception as exc:
                if await self._database_down(exc):
                    await self._wait_out_outage(incoming, exc)
                    continue  # an outage counts no attempt
                if not isinstance(exc, TRANSIENT):
                    # A message that poisons its batch: find it by handling them one by one.
                    if len(parsed) > 1:
                        for pair in parsed:
                            await self._handle([pair])
                    else:
                        await self._dead_letter(parsed, f"{type(exc).__name__}: {exc}", attempt + 1)
                    return
                attempt += 1
                self.metrics.retried.inc(len(messages))
                log.warning("batch of %d failed (attempt %d of %d): %s", len(messages), attempt,
                            self.settings.max_attempts, exc, extra={"attempt": attempt, "count": len(messages)})
                if attempt >= self.settings.max_attempts:
                    if len(parsed) > 1:  # do not let one message take the whole batch down with it
                        for pair in parsed:
                            await self._handle([pair])
                    else:
                        await self._dead_letter(parsed, f"still failing after {attempt} attempts: {exc}", attempt)
                    return
                await self._sleep(self.settings.retry_base_s * 2 ** (attempt - 1))
        await _ack(incoming)
        self.metrics.observe_batch(len(messages), outcome.embedded, outcome.encode_s)
        for delivery, message in parsed:
            log.info("handled %s %s", message.type, message.product_id,
                     extra={"message_id": message.message_id, "product_id": message.product_id,
                            "attempt": attempt + 1, "redelivered": bool(getattr(delivery, "redelivered", False)),
                            "elapsed_ms": round((time.perf_counter() - started) * 1000)})

    async def _database_down(self, exc: Exception) -> bool:
        """Whether `exc` means the database is unreachable rather than that this batch fails."""
        if is_outage(exc):
            return True
        return not isinstance(exc, PermanentError) and not await self.store.reachable()

    async def _wait_out_outage(self, held: list[AbstractIncomingMessage], exc: BaseException) -> None:
        """Return once the database answers; raise Released when the messages went back instead."""
        self.metrics.outages.inc()
        log.warning("database unreachable (%s: %s): holding %d message(s) until it returns",
                    type(exc).__name__, exc, len(held), extra={"count": len(held)})
        since, tries = time.monotonic(), 0
        while not await self.store.reachable():
            if self._stopping.is_set():
                await self._release(held)
            if self._tag is not None and time.monotonic() - since > self.settings.outage_hold_s:
                log.warning("database still unreachable after %.0fs: handing %d message(s) back and pausing",
                            time.monotonic() - since, len(held))
                await self._stop_consuming()
                for message in held:
                    await _settle(message, requeue=True)
                held = []
            tries += 1
            await self._sleep(backoff_s(tries, self.settings.retry_base_s))
        log.info("database reachable again after %.1fs", time.monotonic() - since)
        if self._tag is None:  # we had paused: consume again; nothing is left in hand
            self._tag = await self.queue.consume(self._inbox.put)
            raise Released()

    async def _release(self, held: list[AbstractIncomingMessage]) -> None:
        for message in held:
            await _settle(message, requeue=True)
        raise Released()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, cut short by stop()."""
        try:
            await asyncio.wait_for(asyncio.shield(self._stopping.wait()), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    async def _dead_letter(self, pairs: list[tuple[AbstractIncomingMessage, ProductMessage | None]], reason: str,
                           attempts: int) -> None:
        """Record the messages as dead letters (waiting out a database outage), then ack them."""
        for incoming, message in pairs:
            log.error("dead-lettering message: %s", reason, extra={"message_id": incoming.message_id})
        while True:
            try:
                await self.store.dead_letter([dead_letter_row(incoming, message, reason, attempts)
                                              for incoming, message in pairs])
                break
            except Exception as exc:
                if not await self._database_down(exc):
                    raise
                await self._wait_out_outage([pair[0] for pair in pairs], exc)
        self.metrics.dead_lettered.inc(len(pairs))
        await _ack([pair[0] for pair in pairs])


def _channel_closed(message: AbstractIncomingMessage) -> bool:
    try:
        channel = getattr(message, "channel", None)  # aio-pika raises once the channel is gone
    except Exception:
        return True
    return bool(channel is not None and getattr(channel, "is_closed", False))


async def _ack(incoming: list[AbstractIncomingMessage]) -> None:
    for message in incoming:
        try:
            await message.ack()
        except Exception as exc:  # channel lost: the broker redelivers, handling is idempotent
            log.warning("ack of %s failed: %s", message.message_id, exc)


async def _settle(message: AbstractIncomingMessage, requeue: bool) -> None:
    try:
        await message.nack(requeue=requeue)
    except Exception as exc:  # channel lost: the broker returns it anyway
        log.warning("nack of %s failed: %s", message.message_id, exc)
