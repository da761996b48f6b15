"""The embedder's PostgreSQL store: products and their vectors written in one transaction."""
import asyncio

import asyncpg
import numpy as np

from services.embedder.handler import VectorKey
from shared import catalog, dead_letters, models as embedding_models
from shared.dead_letters import DeadLetter
from shared.errors import RetryableError
from shared.schemas import ProductMessage, content_hash


class PgStore:
    def __init__(self, pool: asyncpg.Pool, model_name: str):
        self.pool = pool
        self.model_name = model_name  # the model of tenants that never switched

    async def models(self, tenant_ids: list[str]) -> dict[str, list[str]]:
        async with self.pool.acquire() as conn:
            found = await embedding_models.tenant_models(conn, tenant_ids, self.model_name)
        return {tenant_id: models.wanted for tenant_id, models in found.items()}

    async def known_state(self, tenant_id: str, product_ids: list[str],
                          model: str) -> dict[str, tuple[int, str | None]]:
        async with self.pool.acquire() as conn:
            return await catalog.known_state(conn, tenant_id, model, product_ids)

    async def register_model(self, model: str, dimension: int) -> None:
        async with self.pool.acquire() as conn:
            await embedding_models.register(conn, model, dimension)

    async def apply(self, messages: list[ProductMessage], vectors: dict[VectorKey, np.ndarray],
                    models: dict[str, list[str]]) -> None:
        """One transaction of a few set-based statements, whatever the batch size. `messages` hold at
        most one write per product, sorted by key (handler.latest_per_product)."""
        async with self.pool.acquire() as conn, conn.transaction():
            applied = await catalog.write_products(conn, [
                (m.tenant_id, m.product_id, m.product if m.type == "product.upsert" else None, m.version)
                for m in messages])
            digests = {(m.tenant_id, m.product_id): content_hash(m.product.title, m.product.description)
                       for m in messages if m.type == "product.upsert" and (m.tenant_id, m.product_id) in applied}
            wanted = [(*key, model) for key in digests for model in models[key[0]]]
            await catalog.write_vectors(conn, [(*k, digests[k[:2]], vectors[k]) for k in wanted if k in vectors])
            # A vector not computed here was current when the batch was read: it must still be.
            unchanged = [k for k in wanted if k not in vectors]
            for key, stored in (await catalog.vector_hashes(conn, unchanged)).items():
                if stored != digests[key[:2]]:
                    # The stored vector changed since we looked: handle the batch again.
                    raise RetryableError(f"{key[2]} vector of {key[1]} changed concurrently")

    async def dead_letter(self, rows: list[DeadLetter]) -> None:
        await dead_letters.record(self.pool, rows)

    async def reachable(self) -> bool:
        try:
            await asyncio.wait_for(self.pool.fetchval("SELECT 1"), timeout=2)
        except Exception:
            return False
        return True
