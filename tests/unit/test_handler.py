"""Batch handling with a fake store and a fake encoder: ordering, idempotency, re-embedding."""
import numpy as np
import pytest

from services.embedder.handler import handle_batch, latest_per_product, parse
from shared.errors import PermanentError, RetryableError
from shared.schemas import ProductIn, ProductMessage, content_hash


class FakeEncoder:
    def __init__(self, models=("m",)):
        self.models = models
        self.calls: list[list[str]] = []
        self.by_model: dict[str, int] = {}

    async def available(self, model):
        return model in self.models

    async def encode(self, model, texts):
        self.calls.append(texts)
        self.by_model[model] = self.by_model.get(model, 0) + len(texts)
        return np.ones((len(texts), 4), dtype=np.float32)


class FakeStore:
    """Keeps the same version rule as the SQL: a write applies when its version >= the stored one."""

    def __init__(self, models=("m",)):
        self.wanted = list(models)
        self.products: dict[str, tuple[int, ProductMessage]] = {}
        self.vectors: dict[str, str] = {}  # product id -> content hash of its vector of the first model
        self.other_vectors: dict[tuple[str, str], str] = {}  # (product id, model) -> hash, the other models

    async def models(self, tenant_ids):
        return {tenant_id: self.wanted for tenant_id in tenant_ids}

    async def known_state(self, tenant_id, product_ids, model):
        stored = self.vectors if model == self.wanted[0] else {p: h for (p, m), h in self.other_vectors.items()
                                                                 if m == model}
        return {pid: (self.products[pid][0], stored.get(pid)) for pid in product_ids if pid in self.products}

    async def apply(self, messages, vectors, models):
        for message in messages:
            stored = self.products.get(message.product_id)
            if stored is not None and stored[0] > message.version:
                continue
            self.products[message.product_id] = (message.version, message)
            if message.type == "product.delete":
                self.vectors.pop(message.product_id, None)
                continue
            digest = content_hash(message.product.title, message.product.description)
            for model in models[message.tenant_id]:
                if (message.tenant_id, message.product_id, model) in vectors:
                    if model == self.wanted[0]:
                        self.vectors[message.product_id] = digest
                    else:
                        self.other_vectors[(message.product_id, model)] = digest


def upsert(pid: str, version: int, description: str = "desc") -> ProductMessage:
    product = ProductIn(id=pid, title=f"title {pid}", description=description)
    return ProductMessage(type="product.upsert", tenant_id="default", product_id=pid, version=version, product=product)


def delete(pid: str, version: int) -> ProductMessage:
    return ProductMessage(type="product.delete", tenant_id="default", product_id=pid, version=version)


async def test_a_batch_is_embedded_in_one_encode_call():
    store, encoder = FakeStore(), FakeEncoder()
    outcome = await handle_batch([upsert(f"p{i}", 1) for i in range(5)], store, encoder)
    assert len(encoder.calls) == 1 and len(encoder.calls[0]) == 5
    assert outcome.embedded == 5 and set(store.vectors) == {f"p{i}" for i in range(5)}


async def test_redelivery_and_identical_repost_embed_nothing():
    store, encoder = FakeStore(), FakeEncoder()
    await handle_batch([upsert("p1", 1)], store, encoder)
    await handle_batch([upsert("p1", 1)], store, encoder)  # redelivered
    outcome = await handle_batch([upsert("p1", 2)], store, encoder)  # re-posted, same content
    assert len(encoder.calls) == 1
    assert outcome.embedded == 0 and store.products["p1"][0] == 2


async def test_a_changed_description_is_embedded_again():
    store, encoder = FakeStore(), FakeEncoder()
    await handle_batch([upsert("p1", 1, "old")], store, encoder)
    await handle_batch([upsert("p1", 2, "new")], store, encoder)
    assert len(encoder.calls) == 2
    assert store.vectors["p1"] == content_hash("title p1", "new")


async def test_an_older_write_processed_late_changes_nothing():
    store, encoder = FakeStore(), FakeEncoder()
    await handle_batch([upsert("p1", 5, "newest")], store, encoder)
    await handle_batch([upsert("p1", 3, "stale")], store, encoder)
    assert len(encoder.calls) == 1
    assert store.products["p1"][1].product.description == "newest"


async def test_a_delete_wins_over_an_older_upsert_processed_after_it():
    store, encoder = FakeStore(), FakeEncoder()
    await handle_batch([delete("p1", 10)], store, encoder)
    await handle_batch([upsert("p1", 9)], store, encoder)
    assert store.products["p1"][1].type == "product.delete"
    assert "p1" not in store.vectors and encoder.calls == []


async def test_while_a_model_is_pending_writes_are_embedded_with_both_and_only_what_is_missing():
    store, encoder = FakeStore(models=("m",)), FakeEncoder(models=("m", "next"))
    await handle_batch([upsert("p1", 1), upsert("p2", 1)], store, encoder)
    store.wanted = ["m", "next"]  # recommender reembed --model next
    outcome = await handle_batch([upsert("p1", 1), upsert("p3", 1)], store, encoder)
    assert encoder.by_model == {"m": 3, "next": 2} and outcome.embedded == 3
    assert set(store.other_vectors) == {("p1", "next"), ("p3", "next")}


async def test_a_pending_model_that_cannot_load_never_blocks_the_active_one():
    store, encoder = FakeStore(models=("m", "broken")), FakeEncoder(models=("m",))
    outcome = await handle_batch([upsert("p1", 1)], store, encoder)
    assert outcome.embedded == 1 and "p1" in store.vectors and store.other_vectors == {}
    store.wanted = ["broken"]
    with pytest.raises(RetryableError):
        await handle_batch([upsert("p2", 1)], store, encoder)


def test_only_the_newest_write_per_product_counts_within_a_batch():
    batch = [upsert("b", 1), upsert("a", 3), delete("a", 2), upsert("b", 4)]
    assert [(m.product_id, m.version) for m in latest_per_product(batch)] == [("a", 3), ("b", 4)]


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"type": "product.upsert", "tenant_id": "t", "product_id": "p", "version": 1}'])
def test_unparseable_messages_are_permanent_errors(body):
    with pytest.raises(PermanentError):
        parse(body)
