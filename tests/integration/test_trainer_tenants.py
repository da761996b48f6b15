"""The trainer trains every tenant with interactions, each into its own tables."""
import uuid

from services.trainer.__main__ import run
from services.trainer.job import tenants_with_interactions
from services.ingest import interactions
from shared import neighbours
from shared.schemas import InteractionIn
from shared.settings import TrainerSettings


async def test_once_trains_each_tenant_with_interactions_on_its_own(database_url, pool):
    tenants = [f"train-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    async with pool.acquire() as conn:
        for index, tenant in enumerate(tenants):
            await conn.execute("INSERT INTO tenants (id) VALUES ($1)", tenant)
            for user in range(3):
                events = [InteractionIn(product_id=f"{tenant}-p{n}", type="like") for n in (index, index + 1)]
                await interactions.store(conn, tenant, f"u{user}", events)
    # --once without --tenant trains exactly these: every tenant that has interactions. (Trained one
    # by one here, so that other tests' tenants keep their untrained state.)
    assert set(tenants) <= set(await tenants_with_interactions(pool))
    for tenant in tenants:
        await run(TrainerSettings(database_url=database_url, db_pool_max=2), once=True, tenant=tenant)
    for index, tenant in enumerate(tenants):
        runs = await pool.fetch("SELECT interactions FROM training_runs WHERE tenant_id = $1", tenant)
        assert [r["interactions"] for r in runs] == [6]
        async with pool.acquire() as conn:
            model = await neighbours.load(conn, tenant)
        assert sorted(model.product_ids.tolist()) == [f"{tenant}-p{index}", f"{tenant}-p{index + 1}"]
        assert [pid for pid, _ in model.neighbours("similar", f"{tenant}-p{index}")] == [f"{tenant}-p{index + 1}"]
        assert [pid for pid, _ in model.neighbours("similar", f"{tenant}-p{index + 1}")] == [f"{tenant}-p{index}"]
