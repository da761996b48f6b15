"""Backpressure: ingest refuses new catalogue writes while the embedding backlog is full.

The backlog is the depth of the work queue (messages ready for the workers), read from the broker
at most every `ttl_s` seconds and shared by concurrent requests. A write that would take it past
`max_backlog` is refused with 503 and Retry-After before anything is published, so the queue and
the broker's memory stay bounded (it can overshoot by what is admitted within one refresh: at most
concurrent requests x MAX_BATCH).
Clients (the importer, `make eval`) wait and retry. `tenant_id` is the hook for per-tenant limits.
"""
import asyncio
import time

from shared.amqp import Broker
from shared.errors import Unavailable


class BacklogFull(Unavailable):
    code = "backlog_full"


class Backlog:
    def __init__(self, broker: Broker, max_backlog: int, retry_after_s: int, ttl_s: float = 1.0):
        self.broker = broker
        self.max_backlog = max_backlog
        self.retry_after_s = retry_after_s
        self.ttl_s = ttl_s
        self._depth = 0
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def depth(self) -> int:
        """Messages waiting for the workers, at most `ttl_s` old."""
        async with self._lock:
            if time.monotonic() - self._read_at >= self.ttl_s and self.broker.queue is not None:
                # Declaring again with the same arguments answers the current depth (a passive
                # declare on a robust channel answers from its cache).
                declared = await asyncio.wait_for(self.broker.queue.declare(), timeout=2)
                self._depth = declared.message_count or 0
                self._read_at = time.monotonic()
            return self._depth

    async def admit(self, tenant_id: str, count: int) -> None:
        """Raise BacklogFull (503) once the backlog has reached the limit."""
        if self.max_backlog <= 0 or self.broker.problem:
            return  # no limit, or the broker is down: publishing answers 503 with the reason
        depth = await self.depth()
        if depth >= self.max_backlog:
            raise BacklogFull(
                f"the embedding backlog is full ({depth} waiting, limit {self.max_backlog}); retry later",
                retry_after_s=self.retry_after_s,
            )
