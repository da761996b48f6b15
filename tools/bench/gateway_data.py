"""The gateway bench's data: synthetic products with clustered unit vectors, users with long-tail
tastes and 20 to 2,000 interactions each, and the collaborative model trained on them.

Loaded by binary COPY (no embedding model needed); the HNSW index is built after the load.
"""
import hashlib
import time
from datetime import datetime, timedelta, timezone

import asyncpg
import numpy as np
from pgvector import Vector
from pgvector.asyncpg import register_vector

from services.trainer.job import train
from services.trainer.model import NeighbourConfig
from shared import models
from shared.db import create_pool
from shared.settings import Settings

TENANT = "bench"
MODEL = Settings().model_name
GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "Western", "Animation", "Documentary", "Crime",
          "Fantasy", "Science Fiction", "War", "Music", "Mystery", "Thriller", "Family"]
DIM = 384
LONG_HISTORY = 2000
SHORT_HISTORY = 20
TYPES = np.array(["like", "rating", "view", "purchase", "dislike"], dtype=object)
TYPE_SHARES = [0.4, 0.3, 0.2, 0.05, 0.05]
ZIPF = 1.1
TOPIC_DIRECTIONS, SPREAD, NOISE = 16, 0.35, 0.01  # popularity of the r-th product of a topic ~ 1 / r^ZIPF: a long tail


def synthetic_vectors(count: int, clusters: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors shaped like sentence embeddings, and each vector's topic: a topic centre plus a
    spread along the topic's own few directions (a low intrinsic dimension, as real text embeddings
    have) and a little isotropic noise. Random 384-d noise alone would make every neighbour about
    equally far, which no real catalogue looks like and no approximate index can rank."""
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, clusters, count)
    vectors = np.empty((count, DIM), dtype=np.float32)
    for topic in range(clusters):
        members = np.flatnonzero(labels == topic)
        basis = rng.standard_normal((TOPIC_DIRECTIONS, DIM)).astype(np.float32) / np.sqrt(DIM)
        spread = rng.standard_normal((len(members), TOPIC_DIRECTIONS)).astype(np.float32) @ basis
        noise = rng.standard_normal((len(members), DIM)).astype(np.float32) * NOISE
        vectors[members] = centres[topic] + SPREAD * spread + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, labels


def history_lengths(users: int, long_users: int, rng: np.random.Generator) -> np.ndarray:
    """Log-uniform between SHORT_HISTORY and LONG_HISTORY; the last `long_users` have LONG_HISTORY."""
    lengths = np.exp(rng.uniform(np.log(SHORT_HISTORY), np.log(LONG_HISTORY), users)).astype(int)
    lengths[users - long_users:] = LONG_HISTORY
    return lengths


def interactions(labels: np.ndarray, lengths: np.ndarray, rng: np.random.Generator):
    """Per user: three topics (more for long histories); products drawn with Zipf popularity within
    a topic, distinct per user."""
    by_topic = [np.flatnonzero(labels == t) for t in range(int(labels.max()) + 1)]
    by_topic = [members[rng.permutation(len(members))] for members in by_topic]  # popularity order
    cdfs = [np.cumsum(1 / np.arange(1, len(m) + 1) ** ZIPF) for m in by_topic]
    cdfs = [cdf / cdf[-1] for cdf in cdfs]
    topics = [t for t, m in enumerate(by_topic) if len(m) >= 50]
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for user, length in enumerate(lengths):
        chosen = rng.choice(topics, size=min(len(topics), 3 + length // 200), replace=False)
        picks = []
        for topic in chosen:
            draws = np.searchsorted(cdfs[topic], rng.random(length))
            picks.append(by_topic[topic][np.minimum(draws, len(by_topic[topic]) - 1)])
        items = np.unique(np.concatenate(picks))
        items = rng.permutation(items)[:length]
        kinds = rng.choice(TYPES, size=len(items), p=TYPE_SHARES)
        stars = np.where(kinds == "rating", rng.integers(1, 11, len(items)) / 2, np.nan)
        days = np.sort(rng.uniform(0, 700, len(items)))
        yield user, items, kinds, stars, days, start


async def load(url: str, products: int, users: int, long_users: int, seed: int, dense_items: int) -> dict:
    """Products, vectors, the HNSW index, users, interactions and a trained model; reused when the
    database already holds this many products. Returns {user id: history length}."""
    rng = np.random.default_rng(seed)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING", TENANT)
        if await conn.fetchval("SELECT count(*) FROM products WHERE tenant_id = $1", TENANT) == products:
            rows = await conn.fetch("SELECT user_id, count(*) AS n FROM interactions WHERE tenant_id = $1"
                                    " GROUP BY user_id", TENANT)
            trained = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM collaborative_models WHERE tenant_id = $1)",
                                          TENANT)
            print(f"reusing the {products:,} products and users loaded before"
                  + (" and their model" if trained else "; training the model again (its format changed)"))
            if not trained:
                await _train(url, dense_items)
            await settle(url)
            return {row["user_id"]: row["n"] for row in rows}
        for table in ("interactions", "users", "product_vectors", "products", "collaborative_models", "product_popularity"):
            await conn.execute(f"DELETE FROM {table} WHERE tenant_id = $1", TENANT)  # constant table names
        started = time.perf_counter()
        vectors, labels = synthetic_vectors(products, max(products // 500, 10), rng)
        ids = np.array([f"p{i:07d}" for i in range(products)], dtype=object)
        digest = hashlib.sha256(b"synthetic").hexdigest()
        index = await conn.fetchval("SELECT embedding_index_name($1)", MODEL)  # hex digits: a safe identifier
        await conn.execute(f"DROP INDEX IF EXISTS {index}")  # build after the load
        await conn.copy_records_to_table("products", columns=["tenant_id", "id", "title", "description", "genres",
                                                               "year", "content_hash", "version"], records=(
            (TENANT, pid, f"Product {i} topic {labels[i]}", f"Synthetic product {i}.",
             [GENRES[labels[i] % len(GENRES)], GENRES[(labels[i] * 7 + i) % len(GENRES)]],
             int(1950 + i % 75), digest, 1) for i, pid in enumerate(ids)))
        await register_vector(conn)
        await conn.copy_records_to_table("product_vectors", columns=["tenant_id", "product_id", "model",
                                                                     "content_hash", "embedding"], records=(
            (TENANT, pid, MODEL, digest, Vector(vectors[i])) for i, pid in enumerate(ids)))
        print(f"loaded {products:,} products and vectors by COPY in {time.perf_counter() - started:.1f}s")
        started = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '2GB'")
        await conn.execute("SET max_parallel_maintenance_workers = 2")
        await models.ensure_index(conn, MODEL, DIM)
        print(f"built the HNSW index in {time.perf_counter() - started:.1f}s")
        started = time.perf_counter()
        lengths = history_lengths(users, long_users, rng)
        user_ids = [f"u{u:05d}" for u in range(users)]
        await conn.copy_records_to_table("users", columns=["tenant_id", "id"], records=[(TENANT, u) for u in user_ids])
        total, actual = 0, {}
        for user, items, kinds, stars, days, start in interactions(labels, lengths, rng):
            await conn.copy_records_to_table(
                "interactions", columns=["tenant_id", "user_id", "product_id", "type", "value", "occurred_at"],
                records=[(TENANT, user_ids[user], ids[i], k, None if np.isnan(s) else float(s),
                          start + timedelta(days=float(d))) for i, k, s, d in zip(items, kinds, stars, days)])
            total += len(items)
            actual[user_ids[user]] = len(items)
        await conn.execute("ANALYZE")
        print(f"{users:,} users ({long_users} with {LONG_HISTORY:,}), {total:,} interactions,"
              f" in {time.perf_counter() - started:.1f}s")
    finally:
        await conn.close()
    await _train(url, dense_items)
    await settle(url)
    return actual


async def settle(url: str) -> None:
    """Vacuum the bench's own database, so that the measurements meet settled tables: freshly loaded
    rows get their hint bits and visibility map here, not from the first statements measured, and
    autovacuum has nothing left to do during the run (quick when a previous run did it)."""
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()
    print(f"vacuumed in {time.perf_counter() - started:.1f}s")


async def _train(url: str, dense_items: int) -> None:
    pool = await create_pool(Settings(database_url=url, db_pool_max=2))
    try:
        started = time.perf_counter()
        report = await train(pool, TENANT, NeighbourConfig(max_dense_items=dense_items))
        print(f"trained the collaborative model (EASE on the {dense_items:,} most interacted products, cosine"
              f" for the rest) on {report.interactions:,} interactions in {time.perf_counter() - started:.1f}s")
    finally:
        await pool.close()
