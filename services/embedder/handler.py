"""Handling a batch of catalogue messages, independent of the broker.

At-least-once delivery: a batch may be handled twice. Only the newest version of each product in
a batch counts, stale writes are no-ops, and a vector is computed only when the stored one does not
match the product's content hash, so redeliveries and identical re-posts re-embed nothing.

Each write is embedded with every model its tenant wants now (shared.models: the active one, and
while `recommender reembed` runs, the pending one too). A pending model that cannot be loaded is
skipped with a warning (the reembed then waits); the active one failing fails the batch.
"""
import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from pydantic import ValidationError

from shared.dead_letters import DeadLetter
from shared.errors import PermanentError, RetryableError
from shared.schemas import ProductMessage, content_hash, embedding_text

log = logging.getLogger(__name__)

# (tenant id, product id)
Key = tuple[str, str]
# (tenant id, product id, model)
VectorKey = tuple[str, str, str]


class Store(Protocol):
    async def models(self, tenant_ids: list[str]) -> dict[str, list[str]]:
        """tenant id -> the models its writes are embedded with now, the active one first."""

    async def known_state(self, tenant_id: str, product_ids: list[str],
                          model: str) -> dict[str, tuple[int, str | None]]:
        """product id -> (stored version, content hash of its stored vector of `model` or None)."""

    async def apply(self, messages: list[ProductMessage], vectors: dict[VectorKey, np.ndarray],
                    models: dict[str, list[str]]) -> None:
        """Write every message (and the given vectors) in one transaction; every upsert applied must
        then have a current vector of each of its tenant's `models`."""

    async def dead_letter(self, rows: list[DeadLetter]) -> None:
        """Record dead letters (idempotent by message id)."""

    async def reachable(self) -> bool:
        """Whether the database answers now."""


class TextEncoders(Protocol):
    async def available(self, model: str) -> bool:
        """Whether the model is (or can now be) loaded."""

    async def encode(self, model: str, texts: list[str]) -> np.ndarray: ...


@dataclass
class BatchOutcome:
    written: int = 0
    embedded: int = 0
    superseded: int = 0
    encode_s: float = 0.0
    keys: list[Key] = field(default_factory=list)


def parse(body: bytes) -> ProductMessage:
    """A message from its JSON body; PermanentError when no retry could make it valid."""
    try:
        return ProductMessage.model_validate_json(body)
    except ValidationError as exc:
        raise PermanentError(f"invalid message: {exc.error_count()} error(s): {exc.errors()[0]['msg']}") from exc


def latest_per_product(messages: list[ProductMessage]) -> list[ProductMessage]:
    """The highest version per product, in product order (a fixed lock order across workers)."""
    latest: dict[Key, ProductMessage] = {}
    for message in messages:
        key = (message.tenant_id, message.product_id)
        if key not in latest or message.version > latest[key].version:
            latest[key] = message
    return [latest[key] for key in sorted(latest)]


def needs_embedding(message: ProductMessage, state: tuple[int, str | None] | None) -> bool:
    if message.type != "product.upsert":
        return False
    if state is None:
        return True
    stored_version, vector_hash = state
    if stored_version > message.version:
        return False  # a newer write is stored: this one will not apply
    return vector_hash != content_hash(message.product.title, message.product.description)


@dataclass
class Prepared:
    """A batch read and encoded, ready to write: the writes that count, the models each tenant's
    upserts need, and the vectors computed."""
    latest: list[ProductMessage]
    models: dict[str, list[str]]
    vectors: dict[VectorKey, np.ndarray]
    outcome: BatchOutcome


async def handle_batch(messages: list[ProductMessage], store: Store, encoders: TextEncoders) -> BatchOutcome:
    return await apply_batch(await prepare_batch(messages, store, encoders), store)


async def prepare_batch(messages: list[ProductMessage], store: Store, encoders: TextEncoders) -> Prepared:
    """Read what is stored and encode what it lacks; nothing is written yet. Writing it later is
    safe: the write applies only versions at least the stored ones and checks that every vector
    not computed here is still current (else RetryableError)."""
    latest = latest_per_product(messages)
    outcome = BatchOutcome(written=len(latest), superseded=len(messages) - len(latest))
    tenants = sorted({m.tenant_id for m in latest})
    wanted = await store.models(tenants)
    models: dict[str, list[str]] = {}
    to_embed: dict[str, list[ProductMessage]] = {}
    for tenant_id in tenants:
        group = [m for m in latest if m.tenant_id == tenant_id]
        models[tenant_id] = []
        for rank, model in enumerate(wanted[tenant_id]):
            if not await encoders.available(model):
                if rank == 0:  # the model the tenant's requests use: retry, then dead-letter
                    raise RetryableError(f"model {model} of tenant {tenant_id} is not available")
                log.warning("model %s is not available here: writes of %s wait for it", model, tenant_id)
                continue
            models[tenant_id].append(model)
            state = await store.known_state(tenant_id, [m.product_id for m in group], model)
            to_embed.setdefault(model, []).extend(m for m in group if needs_embedding(m, state.get(m.product_id)))
    vectors: dict[VectorKey, np.ndarray] = {}
    started = time.perf_counter()
    for model, group in to_embed.items():
        if group:
            matrix = await encoders.encode(model, [embedding_text(m.product.title, m.product.description)
                                                   for m in group])
            vectors.update({(m.tenant_id, m.product_id, model): row for m, row in zip(group, matrix)})
    outcome.encode_s = time.perf_counter() - started if vectors else 0.0
    return Prepared(latest, models, vectors, outcome)


async def apply_batch(prepared: Prepared, store: Store) -> BatchOutcome:
    await store.apply(prepared.latest, prepared.vectors, prepared.models)
    outcome = prepared.outcome
    outcome.embedded = len(prepared.vectors)
    outcome.keys = [(m.tenant_id, m.product_id) for m in prepared.latest]
    return outcome


def dead_letter_row(incoming, message: ProductMessage | None, reason: str, attempts: int) -> DeadLetter:
    """The dead letter of a delivered message (`incoming`: body, message_id, headers) and its parse."""
    message_id = incoming.message_id or (message.message_id if message else None)
    return DeadLetter(
        message_id=message_id or hashlib.sha256(incoming.body).hexdigest()[:32],
        tenant_id=message.tenant_id if message else None,
        product_id=message.product_id if message else None,
        version=message.version if message else None,
        body=incoming.body,
        reason=reason,
        attempts=attempts + redeliveries(incoming),
    )


def redeliveries(incoming) -> int:
    """Earlier deliveries of a message (the quorum queue's x-delivery-count), 0 when unknown."""
    headers = getattr(incoming, "headers", None) or {}
    try:
        return int(headers.get("x-delivery-count", 0))
    except (TypeError, ValueError):
        return 0
