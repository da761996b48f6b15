"""The consume loop with a fake queue: batching, acks after the write, dead-lettering, retries."""
import asyncio


from services.embedder.metrics import WorkerMetrics
from services.embedder.worker import Worker
from shared.errors import RetryableError
from shared.settings import EmbedderSettings
from tests.unit.test_handler import FakeEncoder, FakeStore, upsert


class FakeMessage:
    def __init__(self, body: bytes):
        self.body = body
        self.message_id = None
        self.outcome: str | None = None

    async def ack(self):
        self.outcome = "ack"

    async def reject(self, requeue=False):
        self.outcome = "requeue" if requeue else "dead"

    async def nack(self, requeue=True):
        self.outcome = "requeue" if requeue else "dead"


class FakeQueue:
    def __init__(self, messages):
        self.messages = messages

    async def consume(self, callback):
        for message in self.messages:
            await callback(message)
        return "tag"

    async def cancel(self, tag):
        pass


class FlakyStore(FakeStore):
    def __init__(self, failures: int):
        super().__init__()
        self.failures = failures
        self.batches: list[int] = []

    async def apply(self, messages, vectors):
        if self.failures:
            self.failures -= 1
            raise RetryableError("database down")
        self.batches.append(len(messages))
        await super().apply(messages, vectors)


def settings(**overrides) -> EmbedderSettings:
    return EmbedderSettings(**{"batch_size": 4, "batch_wait_s": 0.05, "max_attempts": 3, "retry_base_s": 0.01,
                               **overrides})


def bodies(n: int) -> list[FakeMessage]:
    return [FakeMessage(upsert(f"p{i}", 1).model_dump_json().encode()) for i in range(n)]


async def run(worker: Worker) -> None:
    await asyncio.wait_for(worker.run(until_idle_s=0.3), timeout=10)


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
    await run(Worker(settings(), FakeQueue(messages), FlakyStore(0), FakeEncoder(), metrics))
    assert [m.outcome for m in messages] == ["ack", "dead", "ack", "ack"]
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
    await run(Worker(settings(), FakeQueue(messages), FlakyStore(failures=99), FakeEncoder(), WorkerMetrics()))
    assert {m.outcome for m in messages} == {"dead"}


async def test_stop_finishes_the_batch_in_hand():
    messages = bodies(3)
    store = FlakyStore(0)
    worker = Worker(settings(batch_wait_s=0.2), FakeQueue(messages), store, FakeEncoder(), WorkerMetrics())
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.05)  # the batch is being gathered
    worker.stop()
    await asyncio.wait_for(task, timeout=5)
    assert {m.outcome for m in messages} == {"ack"}
