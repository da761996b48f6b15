"""The per-tenant model switch on the real PostgreSQL (shared.models)."""
import numpy as np
import pytest

from shared import catalog, models
from shared.schemas import ProductIn, content_hash

DEFAULT, NEW = "all-MiniLM-L6-v2", "test-switch-model"


async def tenant_with_products(pool, tenant: str, count: int) -> list[str]:
    await pool.execute("INSERT INTO tenants (id) VALUES ($1)", tenant)
    ids = [f"p{n}" for n in range(count)]
    async with pool.acquire() as conn:
        await catalog.upsert_products(conn, tenant, [(ProductIn(id=pid, title=pid, description="d"), 1) for pid in ids])
    return ids


async def store(pool, tenant: str, ids: list[str], model: str, dimension: int) -> None:
    async with pool.acquire() as conn:
        for pid in ids:
            await catalog.store_vector(conn, tenant, pid, model, content_hash(pid, "d"),
                                       np.ones(dimension, dtype=np.float32) / dimension ** 0.5)


async def test_the_switch_waits_for_every_live_product_then_flips_in_one_step(pool, unique):
    tenant = f"models-{unique}"
    ids = await tenant_with_products(pool, tenant, 3)
    await store(pool, tenant, ids, DEFAULT, 384)
    async with pool.acquire() as conn:
        await models.register(conn, NEW, 8)
        state = await models.set_pending(conn, tenant, NEW, DEFAULT)
        assert (state.active, state.pending, state.wanted) == (DEFAULT, NEW, [DEFAULT, NEW])
        assert await models.active_model(conn, tenant, DEFAULT) == (DEFAULT, 384)
        await store(pool, tenant, ids[:2], NEW, 8)
        assert await models.missing_vectors(conn, tenant, NEW) == ["p2"]
        assert await models.switch(conn, tenant, NEW) is None  # p2 still lacks its vector
        await store(pool, tenant, ids[2:], NEW, 8)
        assert await models.switch(conn, tenant, NEW) == DEFAULT
        assert await models.active_model(conn, tenant, DEFAULT) == (NEW, 8)
        assert (await models.tenant_models(conn, [tenant], DEFAULT))[tenant].wanted == [NEW]


async def test_a_stale_vector_does_not_count_and_deleted_products_need_none(pool, unique):
    tenant = f"stale-{unique}"
    await tenant_with_products(pool, tenant, 2)
    async with pool.acquire() as conn:
        await catalog.store_vector(conn, tenant, "p0", NEW, "an older text", np.ones(8, dtype=np.float32))
        await catalog.tombstone_product(conn, tenant, "p1", 2)
        assert await models.missing_vectors(conn, tenant, NEW) == ["p0"]


async def test_only_vectors_of_a_model_the_tenant_no_longer_uses_can_be_dropped(pool, unique):
    tenant = f"drop-{unique}"
    ids = await tenant_with_products(pool, tenant, 2)
    await store(pool, tenant, ids, DEFAULT, 384)
    await store(pool, tenant, ids, NEW, 8)
    async with pool.acquire() as conn:
        with pytest.raises(ValueError, match="in use"):
            await models.drop_vectors(conn, tenant, DEFAULT, DEFAULT)  # never switched: the default is active
        await models.set_pending(conn, tenant, NEW, DEFAULT)
        with pytest.raises(ValueError, match="in use"):
            await models.drop_vectors(conn, tenant, NEW, DEFAULT)  # pending
        assert await models.switch(conn, tenant, NEW) == DEFAULT
        assert await models.drop_vectors(conn, tenant, DEFAULT, DEFAULT) == 2
        assert await models.set_pending(conn, tenant, NEW, DEFAULT) == models.TenantModels(NEW, None)  # already
