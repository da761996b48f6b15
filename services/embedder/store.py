"""The embedder's PostgreSQL store: products and their vectors written in one transaction."""
import asyncio

import asyncpg
import numpy as np

from services.embedder.handler import Key, VectorKey
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
        async with self.pool.acquire() as conn, conn.transaction():
            for message in messages:
                key = (message.tenant_id, message.product_id)
                if message.type == "product.delete":
                    await catalog.tombstone_product(conn, *key, message.version)
                    continue
                product = message.product
                if not await catalog.upsert_product(conn, message.tenant_id, product, message.version):
                    continue  # a newer version is stored
                digest = content_hash(product.title, product.description)
                for model in models[message.tenant_id]:
                    if (*key, model) in vectors:
                        await catalog.store_vector(conn, *key, model, digest, vectors[(*key, model)])
                    elif await self._vector_hash(conn, key, model) != digest:
                        # The stored vector changed since we looked: handle the batch again.
                        raise RetryableError(f"{model} vector of {key[1]} changed concurrently")

    async def _vector_hash(self, conn: asyncpg.Connection, key: Key, model: str) -> str | None:
        return await conn.fetchval(
            "SELECT content_hash FROM product_vectors WHERE tenant_id = $1 AND product_id = $2 AND model = $3",
            *key,
            model,
        )

    async def dead_letter(self, rows: list[DeadLetter]) -> None:
        await dead_letters.record(self.pool, rows)

    async def reachable(self) -> bool:
        try:
            await asyncio.wait_for(self.pool.fetchval("SELECT 1"), timeout=2)
        except Exception:
            return False
        return True
