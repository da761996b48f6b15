"""The consume loop with a fake queue: batching, acks after the write, dead-lettering, retries."""
import asyncio

import aiormq.exceptions
import pytest

from services.embedder.metrics import WorkerMetrics
from services.embedder.worker import Worker
from shared.errors import RetryableError
from shared.settings import EmbedderSettings
from tests.unit.test_handler import FakeEncoder, FakeStore, upsert


class FakeMessage:
    def __init__(self, body: bytes):
        self.body = body
        self.message_id = None
        self.headers = {}
        self.outcome: str | None = None

    async def ack(self):
        self.outcome = "ack"

    async def reject(self, requeue=False):
        self.outcome = "requeue" if requeue else "dead"

    async def nack(self, requeue=True):
        self.outcome = "requeue" if requeue else "dead"


class FakeQueue:
    """Delivers its messages to the first consumer; a message handed back is delivered again."""

    name = "products.embed"

    def __init__(self, messages):
        self.messages = messages
        self.consumes = 0
        self.cancels = 0

    async def consume(self, callback):
        self.consumes += 1
        for message in self.messages:
            if message.outcome in (None, "requeue"):
                message.outcome = None
                await callback(message)
        return "tag"

    async def cancel(self, tag):
        self.cancels += 1


class RestartingQueue(FakeQueue):
    """The broker shuts down as the first `refusals` consumers are asked for (a restart while the
    worker starts); the robust connection is back for the next."""

    def __init__(self, messages, refusals: int):
        super().__init__(messages)
        self.refusals = refusals

    async def consume(self, callback):
        if self.refusals:
            self.refusals -= 1
            raise aiormq.exceptions.ConnectionClosed(
                320, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'")
        return await super().consume(callback)


class FlakyStore(FakeStore):
    """Fails `failures` writes while the database answers; `down` writes fail with the database down."""

    def __init__(self, failures: int = 0, down: int = 0):
        super().__init__()
        self.failures = failures
        self.down = down
        self.batches: list[int] = []
        self.dead: list = []

    async def apply(self, messages, vectors, models):
        if self.down:
            self.down -= 1
            raise ConnectionRefusedError(111, "Connect call failed")
        if self.failures:
            self.failures -= 1
            raise RetryableError("deadlock detected")
        self.batches.append(len(messages))
        await super().apply(messages, vectors, models)

    async def dead_letter(self, rows):
        if self.down:
            self.down -= 1
            raise ConnectionRefusedError(111, "Connect call failed")
        self.dead += rows

    async def reachable(self):
        if self.down:
            self.down -= 1
            return False
        return True


def settings(**overrides) -> EmbedderSettings:
    return EmbedderSettings(**{"batch_size": 4, "batch_wait_s": 0.05, "max_attempts": 3, "retry_base_s": 0.01,
                               **overrides})


def bodies(n: int) -> list[FakeMessage]:
    return [FakeMessage(upsert(f"p{i}", 1).model_dump_json().encode()) for i in range(n)]


async def run(worker: Worker) -> None:
    await asyncio.wait_for(worker.run(until_idle_s=0.3), timeout=10)


async def eventually(condition, failure: str, timeout_s: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, failure
        await asyncio.sleep(0.02)


async def test_messages_are_gathered_into_batches_and_acked_after_the_write():
    messages = bodies(10)
    store, encoder = FlakyStore(failures=0), FakeEncoder()
    await run(Worker(settings(), FakeQueue(messages), store, encoder, WorkerMetrics()))
    assert store.batches == [4, 4, 2]
    assert [len(call) for call in encoder.calls] == [4, 4, 2]
    assert {m.outcome for m in messages} == {"ack"}


async def test_a_malformed_message_is_dead_lettered_and_the_rest_are_handled():
    messages = bodies(3)
    messages.insert(1, FakeMessage(b'{"type": "surprise"}'))
    metrics = WorkerMetrics()
    store = FlakyStore()
    await run(Worker(settings(), FakeQueue(messages), store, FakeEncoder(), metrics))
    assert [m.outcome for m in messages] == ["ack"] * 4
    [dead] = store.dead
    assert dead.body == b'{"type": "surprise"}' and "invalid message" in dead.reason and dead.attempts == 1
    assert metrics.dead_lettered._value.get() == 1


async def test_a_transient_failure_is_retried_with_backoff():
    messages = bodies(2)
    store = FlakyStore(failures=2)
    metrics = WorkerMetrics()
    await run(Worker(settings(), FakeQueue(messages), store, FakeEncoder(), metrics))
    assert {m.outcome for m in messages} == {"ack"}
    assert metrics.retried._value.get() == 4  # two failed attempts of a batch of two


async def test_a_failure_that_outlasts_every_attempt_is_dead_lettered_not_requeued():
    messages = bodies(2)
    store = FlakyStore(failures=99)
    await run(Worker(settings(), FakeQueue(messages), store, FakeEncoder(), WorkerMetrics()))
    assert {m.outcome for m in messages} == {"ack"}
    assert sorted(d.product_id for d in store.dead) == ["p0", "p1"]
    assert all("still failing after 3 attempts" in d.reason and d.version == 1 for d in store.dead)


async def test_a_database_outage_longer_than_every_attempt_dead_letters_nothing():
    messages = bodies(6)
    store, metrics = FlakyStore(down=7), WorkerMetrics()  # more failures than max_attempts (3)
    queue = FakeQueue(messages)
    await run(Worker(settings(), queue, store, FakeEncoder(), metrics))
    assert store.dead == []
    assert {m.outcome for m in messages} == {"ack"}
    assert sorted(store.products) == [f"p{i}" for i in range(6)]
    assert metrics.retried._value.get() == 0 and metrics.outages._value.get() >= 1
    assert queue.consumes == 1  # held, never handed back: the broker counted no redelivery


async def test_messages_are_held_unacked_while_the_database_is_down():
    messages = bodies(2)
    store = FlakyStore(down=10**9)
    worker = Worker(settings(), FakeQueue(messages), store, FakeEncoder(), WorkerMetrics())
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.5)
    assert [m.outcome for m in messages] == [None, None] and store.dead == []
    store.down = 0  # the database is back
    await eventually(lambda: {m.outcome for m in messages} == {"ack"}, f"not acked after the database returned: {messages}")
    worker.stop()
    await asyncio.wait_for(task, timeout=5)


@pytest.mark.parametrize("count", [3, 8])  # one batch in hand; two: one failing to write, the next encoded
async def test_an_outage_longer_than_the_hold_hands_messages_back_once_and_pauses(count):
    messages = bodies(count)
    store = FlakyStore(down=10**9)
    queue = FakeQueue(messages)
    worker = Worker(settings(outage_hold_s=0.1), queue, store, FakeEncoder(), WorkerMetrics())
    task = asyncio.create_task(worker.run())
    await eventually(lambda: queue.cancels == 1, "the consumer was not paused")
    assert queue.consumes == 1 and [m.outcome for m in messages] == ["requeue"] * count
    store.down = 0
    await eventually(lambda: {m.outcome for m in messages} == {"ack"}, f"not consumed again after the outage: {messages}")
    assert queue.consumes == 2 and store.dead == []
    worker.stop()
    await asyncio.wait_for(task, timeout=5)


async def test_stop_finishes_the_batch_in_hand():
    messages = bodies(3)
    store = FlakyStore(0)
    worker = Worker(settings(batch_wait_s=0.2), FakeQueue(messages), store, FakeEncoder(), WorkerMetrics())
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.05)  # the batch is being gathered
    worker.stop()
    await asyncio.wait_for(task, timeout=5)
    assert {m.outcome for m in messages} == {"ack"}


class GatedStore(FlakyStore):
    """Holds every write until `opened` is set."""

    def __init__(self):
        super().__init__()
        self.opened = asyncio.Event()

    async def apply(self, messages, vectors, models):
        await self.opened.wait()
        await super().apply(messages, vectors, models)


class WatchedEncoder(FakeEncoder):
    """Calls `on_call(number of the call)` at each encode."""

    def __init__(self, on_call):
        super().__init__()
        self.on_call = on_call

    async def encode(self, model, texts):
        matrix = await super().encode(model, texts)
        self.on_call(len(self.calls))
        return matrix


async def test_the_next_batch_is_encoded_while_one_is_written_and_each_is_acked_after_its_own_write():
    messages = bodies(8)
    store = GatedStore()
    seen_at_second_encode = []

    def on_call(n):
        if n == 2:  # the first batch's write is still held: nothing may be acked yet
            seen_at_second_encode.extend(m.outcome for m in messages)
            store.opened.set()

    await run(Worker(settings(), FakeQueue(messages), store, WatchedEncoder(on_call), WorkerMetrics()))
    assert seen_at_second_encode == [None] * 8
    assert store.batches == [4, 4] and {m.outcome for m in messages} == {"ack"}


async def test_a_failed_write_is_retried_while_the_next_batch_waits_then_both_are_written():
    messages = bodies(8)
    store, metrics = FlakyStore(failures=1), WorkerMetrics()
    await run(Worker(settings(), FakeQueue(messages), store, FakeEncoder(), metrics))
    assert store.batches == [4, 4] and store.dead == []
    assert {m.outcome for m in messages} == {"ack"}
    assert metrics.retried._value.get() == 4  # the first batch, once


async def test_stop_finishes_both_batches_in_hand_and_returns_the_rest():
    messages = bodies(12)
    store = FlakyStore()
    worker = None

    def on_call(n):
        if n == 2:  # SIGTERM while the second batch is encoded, the first written
            worker.stop()

    worker = Worker(settings(), FakeQueue(messages), store, WatchedEncoder(on_call), WorkerMetrics())
    await asyncio.wait_for(worker.run(), timeout=5)
    assert store.batches == [4, 4]
    assert [m.outcome for m in messages] == ["ack"] * 8 + ["requeue"] * 4


async def test_a_broker_restart_as_the_worker_starts_consuming_is_waited_out():
    """The broker went away just as the worker asked it for messages: the worker asks again once
    it is back, instead of exiting, and every message is written and acked."""
    messages = bodies(5)
    store = FlakyStore()
    queue = RestartingQueue(messages, refusals=2)
    await run(Worker(settings(), queue, store, FakeEncoder(), WorkerMetrics()))
    assert queue.consumes == 1 and {m.outcome for m in messages} == {"ack"} and sum(store.batches) == 5
