"""The training job: interactions from PostgreSQL in, the collaborative model back to PostgreSQL.

Interactions stream by binary COPY into numpy arrays (services.trainer.load); the tables are built
from those arrays, so memory grows with the number of interactions and products, never with
products squared. The model, each product's popularity included, is stored as one row of packed
arrays (shared.neighbours), and popularity also by COPY into product_popularity (the order of the
popularity continuation), replacing the old ones in one transaction with the run's record: requests see
either the previous model or the new one, never a mix.
"""
import asyncio
import logging
import resource
import time
from datetime import datetime, timezone
from typing import NamedTuple

import asyncpg
import numpy as np

from services.trainer.load import Interactions, load_interactions
from services.trainer.model import NeighbourConfig, build_item_neighbours, user_item_matrix
from services.trainer.sequence import SequenceConfig, build_next_neighbours
from shared import neighbours
from shared.interactions import popularity
from shared.neighbours import CollaborativeModel, NeighbourTable, Packed

log = logging.getLogger(__name__)


class TrainingReport(NamedTuple):
    interactions: int
    last_interaction_id: int
    products: int
    seconds: float
    peak_rss_mib: float


class Model(NamedTuple):
    similar: NeighbourTable
    following: NeighbourTable
    popularity: dict[int, float]  # product code -> score, for products with positive interactions
    products: int  # products with positive interactions


def build(data: Interactions, neighbour_config: NeighbourConfig = NeighbourConfig(),
          sequence_config: SequenceConfig = SequenceConfig(), timings: dict[str, float] | None = None) -> Model:
    """The three tables from the interactions (CPU-bound: run it off the event loop)."""
    timings = {} if timings is None else timings
    started = time.perf_counter()
    matrix = user_item_matrix(data.user, data.product, data.weight, data.users, len(data.product_ids))
    similar = build_item_neighbours(matrix, neighbour_config)
    timings["similar_s"] = time.perf_counter() - started
    started = time.perf_counter()
    following = build_next_neighbours(data.user, data.product, len(data.product_ids), sequence_config)
    timings["next_s"] = time.perf_counter() - started
    scores = popularity(data.product, data.weight, data.time_s)
    return Model(similar, following, scores, int((np.bincount(matrix.indices, minlength=matrix.shape[1]) > 0).sum()))


async def write(conn: asyncpg.Connection, tenant_id: str, run_id: int, model: Model, product_ids: list[str]) -> None:
    """Replace the tenant's model and popularity, in the caller's transaction."""
    scores = np.zeros(len(product_ids), dtype=np.float32)
    scores[list(model.popularity)] = list(model.popularity.values())
    await neighbours.save(conn, tenant_id, CollaborativeModel(
        run_id, np.array(product_ids, dtype=object),
        {"similar": Packed.of(model.similar), "next": Packed.of(model.following)}, scores))
    await conn.execute("DELETE FROM product_popularity WHERE tenant_id = $1", tenant_id)
    await conn.copy_records_to_table("product_popularity", columns=["tenant_id", "product_id", "score"], records=(
        (tenant_id, product_ids[code], score) for code, score in model.popularity.items()))


async def train(pool: asyncpg.Pool, tenant_id: str, neighbour_config: NeighbourConfig = NeighbourConfig(),
                sequence_config: SequenceConfig = SequenceConfig(),
                timings: dict[str, float] | None = None) -> TrainingReport:
    """Train the tenant's model and store it; `timings` (if given) receives each part's seconds."""
    timings = {} if timings is None else timings
    started_at, started = datetime.now(timezone.utc), time.perf_counter()
    async with pool.acquire() as conn:
        data = await load_interactions(conn, tenant_id)
    timings["load_s"] = time.perf_counter() - started
    model = await asyncio.to_thread(build, data, neighbour_config, sequence_config, timings)
    written = time.perf_counter()
    async with pool.acquire() as conn, conn.transaction():
        run_id = await conn.fetchval("SELECT nextval(pg_get_serial_sequence('training_runs', 'id'))")
        await write(conn, tenant_id, run_id, model, data.product_ids)
        report = TrainingReport(len(data), data.last_id, model.products, time.perf_counter() - started,
                                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        await conn.execute(
            "INSERT INTO training_runs (id, tenant_id, started_at, interactions, last_interaction_id, products,"
            " seconds, peak_rss_mib) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            run_id, tenant_id, started_at, *report,
        )
    timings["write_s"] = time.perf_counter() - written
    log.info("trained tenant %s on %d interactions: %d products, %.1f s, peak %.0f MiB", tenant_id,
             report.interactions, report.products, report.seconds, report.peak_rss_mib, extra={"timings": timings})
    return report


async def tenants_with_interactions(pool: asyncpg.Pool) -> list[str]:
    """Every tenant that has any interaction (a loose index scan would be faster; tenants are few)."""
    rows = await pool.fetch("SELECT id FROM tenants t WHERE EXISTS (SELECT 1 FROM interactions i WHERE i.tenant_id = t.id)"
                            " ORDER BY id")
    return [row["id"] for row in rows]


async def interactions_since_last_run(pool: asyncpg.Pool, tenant_id: str) -> tuple[int, float | None]:
    """(interactions newer than the last run, seconds since it finished, None if never)."""
    last = await pool.fetchrow(  # the run whose model is stored (none after the model's format changed)
        "SELECT r.last_interaction_id, extract(epoch FROM now() - r.finished_at) AS age_s FROM training_runs r"
        " JOIN collaborative_models m ON m.tenant_id = r.tenant_id AND m.run_id = r.id WHERE r.tenant_id = $1",
        tenant_id,
    )
    last_id = last["last_interaction_id"] if last else 0
    new = await pool.fetchval("SELECT count(*) FROM interactions WHERE tenant_id = $1 AND id > $2", tenant_id, last_id)
    return new, (float(last["age_s"]) if last else None)
