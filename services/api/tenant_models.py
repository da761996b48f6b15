"""Which embedding model a tenant's requests use (shared.models), remembered for a second.

A request reads its tenant's model once and uses it for all its queries, so an answer never mixes
two models. Remembering it for `ttl_s` saves a round trip per request; `recommender reembed` keeps
the old vectors for a grace period far longer than that after a switch.
"""
import time
from collections.abc import Callable

import asyncpg

from shared import models

TTL_S = 1.0


class ActiveModels:
    def __init__(self, default: str, ttl_s: float = TTL_S, clock: Callable[[], float] = time.monotonic):
        self.default = default
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: dict[str, tuple[float, tuple[str, int | None]]] = {}

    async def get(self, conn: asyncpg.Connection, tenant_id: str) -> tuple[str, int | None]:
        """(model name, its dimension; None when no worker registered it yet)."""
        now = self.clock()
        cached = self._entries.get(tenant_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await models.active_model(conn, tenant_id, self.default)
        self._entries[tenant_id] = (now + self.ttl_s, found)
        return found
