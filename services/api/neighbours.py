"""Each tenant's collaborative model (shared.neighbours), held in this process's memory.

A request learns the run id of its tenant's stored model in its first round trip. When this process
holds an older run (or none), the request loads the stored one first: once per training run per
process, and requests arriving meanwhile wait for that same load. At most `max_tenants` models are
kept; the least recently used goes first.

A loaded model's objects are frozen out of the garbage collector's view (`gc.freeze`): they live
until the next training run, and a full collection would otherwise walk its dictionaries of every
product (40 ms at 100,000 products, every few hundred requests). They are freed as usual when
the model is replaced: nothing in a model refers back to itself.
"""
import asyncio
import gc
from collections import OrderedDict

import asyncpg

from shared import neighbours
from shared.neighbours import CollaborativeModel


class CollaborativeModels:
    def __init__(self, max_tenants: int):
        self.max_tenants = max_tenants
        self._models: OrderedDict[str, CollaborativeModel] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    def _current(self, tenant_id: str, run_id: int) -> CollaborativeModel | None:
        model = self._models.get(tenant_id)
        if model is None or model.run_id < run_id:
            return None
        self._models.move_to_end(tenant_id)
        return model

    async def get(self, conn: asyncpg.Connection, tenant_id: str, run_id: int | None) -> CollaborativeModel | None:
        """The tenant's model of run `run_id` or later; None when it has none (`run_id` None)."""
        if run_id is None:
            return None
        if (model := self._current(tenant_id, run_id)) is not None:
            return model
        async with self._locks.setdefault(tenant_id, asyncio.Lock()):
            if (model := self._current(tenant_id, run_id)) is not None:
                return model
            model = await neighbours.load(conn, tenant_id)
            if model is not None:
                gc.freeze()
                self._models[tenant_id] = model
                self._models.move_to_end(tenant_id)
                while len(self._models) > self.max_tenants:
                    self._models.popitem(last=False)
            return model
