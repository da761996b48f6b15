import asyncio
from types import SimpleNamespace

import pytest

from services.trainer.__main__ import due
from shared.settings import TrainerSettings

SETTINGS = TrainerSettings(train_after_interactions=100, train_every_s=3600)


@pytest.mark.parametrize(
    "new, age_s, expected",
    [
        (0, None, False),  # nothing to learn from
        (1, None, True),  # never trained: train as soon as there is anything
        (99, 60, False),  # few new and a fresh model
        (100, 60, True),  # enough new interactions
        (1, 3600, True),  # the model is old and something arrived
        (0, 10**6, False),  # old, but nothing new
    ],
)
def test_training_is_due_after_enough_interactions_or_time(new, age_s, expected):
    assert due(new, age_s, SETTINGS) is expected


async def test_a_long_training_of_one_tenant_does_not_hold_up_the_others(monkeypatch):
    """`big` trains until released; `small` gets new interactions meanwhile and is trained anyway."""
    from services.trainer import __main__ as trainer

    release, trained, new = asyncio.Event(), [], {"big": 5, "small": 5}

    async def tenants(pool):
        return ["big", "small"]

    async def since_last_run(pool, tenant):
        return new[tenant], None

    async def train(pool, tenant):
        if tenant == "big":
            await release.wait()
        new[tenant] = 0
        trained.append(tenant)

    monkeypatch.setattr(trainer, "tenants_with_interactions", tenants)
    monkeypatch.setattr(trainer, "interactions_since_last_run", since_last_run)
    monkeypatch.setattr(trainer, "train", train)
    stopping = asyncio.Event()
    loop = asyncio.create_task(trainer._train_when_due(
        TrainerSettings(train_check_s=0.01, train_concurrency=2), SimpleNamespace(pool=None), stopping))
    await asyncio.sleep(0.1)
    assert trained == ["small"]
    new["small"] = 3  # more interactions for small while big still trains
    await asyncio.sleep(0.1)
    assert trained == ["small", "small"]
    release.set()
    stopping.set()
    await asyncio.wait_for(loop, 5)
    assert trained[-1] == "big" and trained.count("big") == 1
