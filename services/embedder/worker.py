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

Batches go through two stages: while one batch is written (one transaction) and acked, the next
is taken from the queue and encoded (the encode runs in a thread, the event loop is free), so the
encoder does not wait for the database. At most two batches are in hand; a batch is acked only
after its own commit. When a write fails, the next batch waits: the failed one is retried (or
waited out, or split, or dead-lettered) alone, and the next is read and encoded again afterwards.
Whatever is handed back during an outage is every message in hand, of both batches.

`stop()` (SIGTERM) stops taking messages, finishes the batches in hand and returns.
"""
import asyncio
import logging
import time
from dataclasses import dataclass, field

import asyncpg
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from services.embedder.handler import (BatchOutcome, Prepared, Store, TextEncoders, apply_batch, dead_letter_row,
                                      handle_batch, parse, prepare_batch)
from services.embedder.metrics import WorkerMetrics
from shared import outages
from shared.errors import PermanentError, RetryableError
from shared.outages import backoff_s, is_outage
from shared.schemas import ProductMessage
from shared.settings import EmbedderSettings

log = logging.getLogger(__name__)

# Failures worth retrying while the database answers (a deadlock, a concurrent vector write).
TRANSIENT = (RetryableError, asyncpg.TransactionRollbackError, asyncpg.InsufficientResourcesError)

Parsed = list[tuple[AbstractIncomingMessage, ProductMessage]]


class Released(Exception):
    """Every message in hand went back to the queue (stopping, or an outage held them too long)."""


@dataclass
class Batch:
    """Messages taken together: the unparseable ones (with why), the parsed ones, and the batch
    prepared ahead (read and encoded) or the error preparing it raised; None: not prepared."""
    invalid: list[tuple[AbstractIncomingMessage, str]] = field(default_factory=list)
    parsed: Parsed = field(default_factory=list)
    ready: Prepared | Exception | None = None
    started: float = field(default_factory=time.perf_counter)


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
        self._in_hand: dict[int, AbstractIncomingMessage] = {}  # taken from the inbox, not yet settled

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, until_idle_s: float | None = None) -> None:
        """Consume until stop(), or until nothing arrived for `until_idle_s` seconds."""
        await self._consume()
        idle_since = time.monotonic()
        current: Batch | None = None
        try:
            while current is not None or not self._stopping.is_set():
                busy = current is not None
                try:
                    current = await self._step(current)
                except Released:  # every message in hand, of both batches, went back
                    current = None
                if busy or current is not None:
                    idle_since = time.monotonic()
                elif until_idle_s is not None and time.monotonic() - idle_since >= until_idle_s:
                    break
        finally:
            await self._stop_consuming()

    async def _step(self, current: Batch | None) -> Batch | None:
        """Write `current` while taking and encoding the next batch, which is returned."""
        if current is not None:
            for incoming, reason in current.invalid:
                await self._dead_letter([(incoming, None)], reason, attempts=1)
        writing = (asyncio.ensure_future(self._write(current))
                   if current is not None and isinstance(current.ready, Prepared) else None)
        ahead, failure = None, None
        try:
            if not self._stopping.is_set() and (current is None or writing is not None):
                ahead = await self._take(give_up=writing)
        finally:
            if writing is not None:
                failure = await writing
        if current is not None and current.parsed and (writing is None or failure is not None):
            if ahead is not None:
                ahead.ready = None  # read again once this batch is through: it may have waited long
            await self._handle(current.parsed, failure if writing is not None else current.ready)
        return ahead

    async def _take(self, give_up: asyncio.Future | None = None) -> Batch | None:
        """The next batch, parsed, read and encoded (an error doing so is kept for _handle); None
        when no message came before `give_up` was done (a failed write does not wait for one)."""
        messages = await self._collect(give_up)
        if not messages:
            return None
        self.metrics.consumed.inc(len(messages))
        batch = Batch()
        for incoming in messages:
            try:
                batch.parsed.append((incoming, parse(incoming.body)))
            except PermanentError as exc:
                batch.invalid.append((incoming, str(exc)))
        if batch.parsed:
            try:
                batch.ready = await prepare_batch([pair[1] for pair in batch.parsed], self.store, self.encoder)
            except Exception as exc:  # handled (retried, waited out, dead-lettered) by _handle, in turn
                batch.ready = exc
        return batch

    async def _write(self, batch: Batch) -> Exception | None:
        """Write a prepared batch once and ack it; the error instead when the write failed."""
        try:
            outcome = await apply_batch(batch.ready, self.store)
        except Exception as exc:  # handled by _handle once the next batch is taken
            return exc
        await self._done(batch.parsed, outcome, 1, batch.started)
        return None

    async def _stop_consuming(self) -> None:
        """Cancel the consumer; what was delivered but never started goes back to the queue."""
        if self._tag is not None:
            tag, self._tag = self._tag, None
            try:
                await self.queue.cancel(tag)
            except Exception as exc:  # the channel is gone: the broker returns the messages itself
                log.warning("cancelling the consumer failed: %s", exc)
        while not self._inbox.empty():
            await self._settle(self._inbox.get_nowait(), requeue=True)

    async def _collect(self, give_up: asyncio.Future | None = None) -> list[AbstractIncomingMessage]:
        """Up to batch_size messages: wait for the first (at most 0.5 s, until stop() or until
        `give_up` is done), then at most batch_wait_s for the rest."""
        if self._inbox.empty():
            stop = asyncio.ensure_future(self._stopping.wait())
            first = asyncio.ensure_future(self._inbox.get())
            done, _ = await asyncio.wait({stop, first, *([give_up] if give_up else [])}, timeout=0.5,
                                         return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if first not in done:
                first.cancel()
                return []
            batch = [first.result()]
        else:
            batch = [self._inbox.get_nowait()]
        deadline = time.monotonic() + self.settings.batch_wait_s
        while len(batch) < self.settings.batch_size:
            if not self._inbox.empty():
                batch.append(self._inbox.get_nowait())
                continue
            try:
                batch.append(await asyncio.wait_for(self._inbox.get(), timeout=max(0, deadline - time.monotonic())))
            except asyncio.TimeoutError:
                break
        # Deliveries from a channel that closed (broker restart) are redelivered on the new one.
        batch = [message for message in batch if not _channel_closed(message)]
        self._in_hand.update((id(message), message) for message in batch)
        return batch

    async def _handle(self, parsed: Parsed, failure: Exception | None = None) -> None:
        """Write the batch, retrying until it is written or dead-lettered; `failure`: what the first
        attempt (made ahead, in _take or _write) raised, None to start afresh."""
        messages = [pair[1] for pair in parsed]
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                if failure is not None:
                    raise failure
                outcome = await handle_batch(messages, self.store, self.encoder)
                break
            except Exception as exc:
                failure = None
                if await self._database_down(exc):
                    await self._wait_out_outage(exc)
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
        await self._done(parsed, outcome, attempt + 1, started)

    async def _done(self, parsed: Parsed, outcome: BatchOutcome, attempt: int, started: float) -> None:
        """Ack a written batch (after its commit), count it and log one line per message."""
        await self._ack([pair[0] for pair in parsed])
        self.metrics.observe_batch(len(parsed), outcome.embedded, outcome.encode_s)
        for delivery, message in parsed:
            log.info("handled %s %s", message.type, message.product_id,
                     extra={"message_id": message.message_id, "product_id": message.product_id,
                            "attempt": attempt, "redelivered": bool(getattr(delivery, "redelivered", False)),
                            "elapsed_ms": round((time.perf_counter() - started) * 1000)})

    async def _database_down(self, exc: Exception) -> bool:
        """Whether `exc` means the database is unreachable rather than that this batch fails."""
        if is_outage(exc):
            return True
        return not isinstance(exc, PermanentError) and not await self.store.reachable()

    async def _wait_out_outage(self, exc: BaseException) -> None:
        """Return once the database answers; raise Released when the messages in hand went back instead."""
        self.metrics.outages.inc()
        log.warning("database unreachable (%s: %s): holding %d message(s) until it returns",
                    type(exc).__name__, exc, len(self._in_hand), extra={"count": len(self._in_hand)})
        since, tries = time.monotonic(), 0
        while not await self.store.reachable():
            if self._stopping.is_set():
                await self._hand_back()
                raise Released()
            if self._tag is not None and time.monotonic() - since > self.settings.outage_hold_s:
                log.warning("database still unreachable after %.0fs: handing %d message(s) back and pausing",
                            time.monotonic() - since, len(self._in_hand))
                await self._stop_consuming()
                await self._hand_back()
            tries += 1
            await self._sleep(backoff_s(tries, self.settings.retry_base_s))
        log.info("database reachable again after %.1fs", time.monotonic() - since)
        if self._tag is None:  # we had paused: consume again; nothing is left in hand
            await self._consume()
            raise Released()

    async def _consume(self) -> None:
        """Ask the broker for messages, again while it is down, until stop()."""
        self._tag = await outages.consume(self.queue, self._inbox.put, self._stopping, self.settings.retry_base_s)

    async def _hand_back(self) -> None:
        """Return every message in hand to the queue."""
        for message in list(self._in_hand.values()):
            await self._settle(message, requeue=True)

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
                await self._wait_out_outage(exc)
        self.metrics.dead_lettered.inc(len(pairs))
        await self._ack([pair[0] for pair in pairs])

    async def _ack(self, incoming: list[AbstractIncomingMessage]) -> None:
        for message in incoming:
            self._in_hand.pop(id(message), None)
            try:
                await message.ack()
            except Exception as exc:  # channel lost: the broker redelivers, handling is idempotent
                log.warning("ack of %s failed: %s", message.message_id, exc)

    async def _settle(self, message: AbstractIncomingMessage, requeue: bool) -> None:
        self._in_hand.pop(id(message), None)
        try:
            await message.nack(requeue=requeue)
        except Exception as exc:  # channel lost: the broker returns it anyway
            log.warning("nack of %s failed: %s", message.message_id, exc)


def _channel_closed(message: AbstractIncomingMessage) -> bool:
    try:
        channel = getattr(message, "channel", None)  # aio-pika raises once the channel is gone
    except Exception:
        return True
    return bool(channel is not None and getattr(channel, "is_closed", False))

