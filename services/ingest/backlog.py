"""Backpressure: ingest refuses new catalogue writes while the embedding backlog is full.

The backlog is the depth of the work queue (messages ready for the workers), read from the broker
at most every `ttl_s` seconds and shared by concurrent requests. A write that would take it past
`max_backlog` is refused with 503 and Retry-After before anything is published, so the queue and
the broker's memory stay bounded (it can overshoot by what is admitted within one refresh: at most
concurrent requests x MAX_BATCH).

Per tenant (the queue is shared, so this is counted in PostgreSQL): with `max_tenant_backlog` set,
a tenant whose products waiting to be embedded (neither embedded nor dead-lettered) reach it gets
429 with Retry-After, so one tenant's bulk import cannot fill the whole backlog.
Clients (the importer, `make eval`) wait and retry.
"""
import asyncio
import time
from collections.abc import Awaitable, Callable

from shared.amqp import Broker
from shared.errors import Unavailable


class BacklogFull(Unavailable):
    code = "backlog_full"


class TenantBacklogFull(Unavailable):
    status = 429
    code = "tenant_backlog_full"


class Backlog:
    def __init__(self, broker: Broker, max_backlog: int, retry_after_s: int, ttl_s: float = 1.0,
                 max_tenant_backlog: int = 0, tenant_pending: Callable[[str], Awaitable[int]] | None = None):
        self.broker = broker
        self.max_backlog = max_backlog
        self.retry_after_s = retry_after_s
        self.ttl_s = ttl_s
        self.max_tenant_backlog = max_tenant_backlog
        self.tenant_pending = tenant_pending
        self._depth = 0
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()
        self._tenants: dict[str, tuple[float, int]] = {}  # tenant -> (read at, pending)

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
        """Raise BacklogFull (503) once the backlog has reached the limit, TenantBacklogFull (429)
        once the tenant's own pending products have."""
        if self.max_tenant_backlog > 0 and self.tenant_pending is not None:
            pending = await self._tenant_pending(tenant_id)
            if pending >= self.max_tenant_backlog:
                raise TenantBacklogFull(
                    f"{pending} of this tenant's products are waiting to be embedded (limit"
                    f" {self.max_tenant_backlog}); retry later", retry_after_s=self.retry_after_s)
        if self.max_backlog <= 0 or self.broker.problem:
            return  # no limit, or the broker is down: publishing answers 503 with the reason
        depth = await self.depth()
        if depth >= self.max_backlog:
            raise BacklogFull(
                f"the embedding backlog is full ({depth} waiting, limit {self.max_backlog}); retry later",
                retry_after_s=self.retry_after_s,
            )

    async def _tenant_pending(self, tenant_id: str) -> int:
        read_at, pending = self._tenants.get(tenant_id, (float("-inf"), 0))
        if time.monotonic() - read_at >= self.ttl_s:
            pending = await self.tenant_pending(tenant_id)
            self._tenants[tenant_id] = (time.monotonic(), pending)
        return pending
