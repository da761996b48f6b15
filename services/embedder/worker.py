"""The consume loop: gather messages into batches, handle each batch, ack only after the commit.

Jobs may run more than once (at-least-once delivery); handling is idempotent. A message that
cannot be parsed goes straight to the dead-letter queue; a transient failure is retried with
backoff `max_attempts` times, then dead-lettered. `stop()` (SIGTERM) stops taking messages,
finishes the batch in hand and returns.
"""
import asyncio
import logging
import time

import asyncpg
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from services.embedder.handler import Store, TextEncoder, handle_batch, parse
from services.embedder.metrics import WorkerMetrics
from shared.errors import PermanentError, RetryableError
from shared.schemas import ProductMessage
from shared.settings import EmbedderSettings

log = logging.getLogger(__name__)

TRANSIENT = (RetryableError, OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError,
             asyncpg.InterfaceError, asyncpg.TransactionRollbackError, asyncpg.InsufficientResourcesError,
             asyncpg.OperatorInterventionError)


class Worker:
    def __init__(self, settings: EmbedderSettings, queue: AbstractQueue, store: Store, encoder: TextEncoder,
                 metrics: WorkerMetrics):
        self.settings = settings
        self.queue = queue
        self.store = store
        self.encoder = encoder
        self.metrics = metrics
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, until_idle_s: float | None = None) -> None:
        """Consume until stop(), or until nothing arrived for `until_idle_s` seconds."""
        tag = await self.queue.consume(self._inbox.put)
        idle_since = time.monotonic()
        try:
            while not self._stopping.is_set():
                batch = await self._collect()
                if batch:
                    await self._process(batch)
                    idle_since = time.monotonic()
                elif until_idle_s is not None and time.monotonic() - idle_since >= until_idle_s:
                    break
        finally:
            await self.queue.cancel(tag)
            while not self._inbox.empty():  # delivered but never started: back to the queue
                await self._inbox.get_nowait().nack(requeue=True)

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
        return batch

    async def _process(self, batch: list[AbstractIncomingMessage]) -> None:
        self.metrics.consumed.inc(len(batch))
        parsed: list[tuple[AbstractIncomingMessage, ProductMessage]] = []
        for incoming in batch:
            try:
                parsed.append((incoming, parse(incoming.body)))
            except PermanentError as exc:
                await self._dead_letter([incoming], str(exc))
        if parsed:
            await self._handle(parsed)

    async def _handle(self, parsed: list[tuple[AbstractIncomingMessage, ProductMessage]]) -> None:
        incoming = [pair[0] for pair in parsed]
        messages = [pair[1] for pair in parsed]
        for attempt in range(1, self.settings.max_attempts + 1):
            started = time.perf_counter()
            try:
                outcome = await handle_batch(messages, self.store, self.encoder)
            except TRANSIENT as exc:
                self.metrics.retried.inc(len(messages))
                log.warning("batch of %d failed (attempt %d of %d): %s", len(messages), attempt,
                            self.settings.max_attempts, exc, extra={"attempt": attempt, "count": len(messages)})
                if attempt < self.settings.max_attempts:
                    await asyncio.sleep(self.settings.retry_base_s * 2 ** (attempt - 1))
                continue
            except Exception as exc:  # a bad message poisoning the batch: isolate it
                if len(parsed) > 1:
                    for pair in parsed:
                        await self._handle([pair])
                else:
                    await self._dead_letter(incoming, f"{type(exc).__name__}: {exc}")
                return
            await self._ack(incoming)
            self.metrics.observe_batch(len(messages), outcome.embedded, outcome.encode_s)
            for message in messages:
                log.info("handled %s %s", message.type, message.product_id,
                         extra={"message_id": message.message_id, "product_id": message.product_id,
                                "attempt": attempt, "elapsed_ms": round((time.perf_counter() - started) * 1000)})
            return
        await self._dead_letter(incoming, f"still failing after {self.settings.max_attempts} attempts")

    async def _ack(self, incoming: list[AbstractIncomingMessage]) -> None:
        for message in incoming:
            try:
                await message.ack()
            except Exception as exc:  # channel lost: the broker redelivers, handling is idempotent
                log.warning("ack of %s failed: %s", message.message_id, exc)

    async def _dead_letter(self, incoming: list[AbstractIncomingMessage], reason: str) -> None:
        self.metrics.dead_lettered.inc(len(incoming))
        for message in incoming:
            log.error("dead-lettering message: %s", reason, extra={"message_id": message.message_id})
            try:
                await message.reject(requeue=False)
            except Exception as exc:
                log.warning("reject of %s failed: %s", message.message_id, exc)
