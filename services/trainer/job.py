"""The training job: interactions from PostgreSQL in, neighbour tables back to PostgreSQL.

Interactions are streamed with a server-side cursor into compact per-user sequences, so memory
grows with the number of interactions, not with products squared. The new tables replace the old
ones in one transaction: requests see either the previous model or the new one, never a mix.
"""
import asyncio
import logging
import resource
import time
from datetime import datetime, timezone
from typing import NamedTuple

import asyncpg
import numpy as np

from services.trainer.model import NeighbourConfig, build_item_neighbours
from services.trainer.sequence import SequenceConfig, build_next_neighbours
from shared.interactions import Interaction, popularity, training_weights

log = logging.getLogger(__name__)

FETCH_ROWS = 50_000


class TrainingReport(NamedTuple):
    interactions: int
    last_interaction_id: int
    products: int
    seconds: float
    peak_rss_mib: float


async def load_events(conn: asyncpg.Connection, tenant_id: str) -> tuple[list[Interaction], int]:
    """Every interaction of the tenant, ordered by user and time; and the highest interaction id."""
    events, last_id = [], 0
    async with conn.transaction():
        cursor = conn.cursor(
            "SELECT id, user_id, product_id, type, value, occurred_at FROM interactions"
            " WHERE tenant_id = $1 ORDER BY user_id, occurred_at, id",
            tenant_id,
            prefetch=FETCH_ROWS,
        )
        async for row in cursor:
            events.append(Interaction(row["product_id"], row["type"], row["value"], row["occurred_at"], row["user_id"]))
            last_id = max(last_id, row["id"])
    return events, last_id


def _sequences(events: list[Interaction]) -> list[list[str]]:
    sequences: dict[str, list[str]] = {}
    for event in events:
        sequences.setdefault(event.user_id, []).append(event.product_id)
    return list(sequences.values())


def _rows(tenant_id: str, kind: str, table) -> list[tuple]:
    return [(tenant_id, kind, product_id, [n for n, _ in pairs], [w for _, w in pairs])
            for product_id, pairs in table]


def _build(tenant_id: str, events: list[Interaction], neighbour_config: NeighbourConfig,
           sequence_config: SequenceConfig) -> tuple[list[tuple], list[tuple], int]:
    """Neighbour rows, popularity rows (CPU-bound: run off the event loop) and the number of products."""
    weights = training_weights(np.array([e.type for e in events], dtype=object),
                               np.array([np.nan if e.value is None else e.value for e in events]))
    similar = build_item_neighbours(((e.user_id, e.product_id, w) for e, w in zip(events, weights)),
                                    neighbour_config)
    following = build_next_neighbours(_sequences(events), sequence_config)
    rows = _rows(tenant_id, "similar", similar.rows()) + _rows(tenant_id, "next", following.items())
    scores = popularity(np.array([e.product_id for e in events], dtype=object), weights,
                        np.array([e.occurred_at.timestamp() for e in events]))
    return rows, [(tenant_id, pid, score) for pid, score in scores.items()], len(similar.product_ids)


async def train(pool: asyncpg.Pool, tenant_id: str, neighbour_config: NeighbourConfig = NeighbourConfig(),
                sequence_config: SequenceConfig = SequenceConfig()) -> TrainingReport:
    started_at, started = datetime.now(timezone.utc), time.perf_counter()
    async with pool.acquire() as conn:
        events, last_id = await load_events(conn, tenant_id)
    rows, popularity, products = await asyncio.to_thread(_build, tenant_id, events, neighbour_config,
                                                          sequence_config)
    report = TrainingReport(len(events), last_id, products, time.perf_counter() - started,
                            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM item_neighbors WHERE tenant_id = $1", tenant_id)
        await conn.copy_records_to_table(
            "item_neighbors", records=rows, columns=["tenant_id", "kind", "product_id", "neighbor_ids", "weights"]
        )
        await conn.execute("DELETE FROM product_popularity WHERE tenant_id = $1", tenant_id)
        await conn.copy_records_to_table("product_popularity", records=popularity,
                                         columns=["tenant_id", "product_id", "score"])
        await conn.execute(
            "INSERT INTO training_runs (tenant_id, started_at, interactions, last_interaction_id, products,"
            " seconds, peak_rss_mib) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            tenant_id, started_at, *report,
        )
    log.info("trained on %d interactions: %d products, %.1f s, peak %.0f MiB", report.interactions,
             report.products, report.seconds, report.peak_rss_mib)
    return report


async def interactions_since_last_run(pool: asyncpg.Pool, tenant_id: str) -> tuple[int, float | None]:
    """(interactions newer than the last run, seconds since it finished, None if never)."""
    last = await pool.fetchrow(
        "SELECT last_interaction_id, extract(epoch FROM now() - finished_at) AS age_s FROM training_runs"
        " WHERE tenant_id = $1 ORDER BY id DESC LIMIT 1",
        tenant_id,
    )
    last_id = last["last_interaction_id"] if last else 0
    new = await pool.fetchval("SELECT count(*) FROM interactions WHERE tenant_id = $1 AND id > $2", tenant_id, last_id)
    return new, (float(last["age_s"]) if last else None)
