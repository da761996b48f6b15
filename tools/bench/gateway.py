"""The gateway part: personal-recommendation latency at catalogue scale (`make bench PART=gateway`).

Starts a throwaway PostgreSQL (or uses `--database-url`, where it creates its own database),
loads synthetic products with random clustered unit vectors by binary COPY (no model needed),
builds the HNSW index after the load, adds users with histories, starts the api as a process and
measures `GET /v1/users/{id}/recommendations`: p50/p99 one request at a time, then requests/s
with several in flight.
"""
import argparse
import asyncio
import hashlib
import os
import random
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import numpy as np
from pgvector import Vector

from services.api.candidates import INDEXED_ORDER, NEAREST
from shared import localpg
from shared.db import create_pool
from shared.migrate import migrate
from shared.settings import ApiSettings, Settings
from tests.processes import spawn, wait_ready
from tools.bench.results import Report

TENANT = "bench"
MODEL = Settings().model_name
GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "Western", "Animation", "Documentary", "Crime",
          "Fantasy", "Science Fiction", "War", "Music", "Mystery", "Thriller", "Family"]
DIM = 384


def synthetic_vectors(count: int, clusters: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around random cluster centres (topics), and each vector's cluster."""
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, clusters, count)
    vectors = centres[labels] + rng.standard_normal((count, DIM)).astype(np.float32) * 0.06
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, labels


async def load(url: str, products: int, users: int, events_per_user: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING", TENANT)
        if await conn.fetchval("SELECT count(*) FROM products WHERE tenant_id = $1", TENANT) == products:
            print(f"reusing the {products:,} products loaded before")
            return [r["id"] for r in await conn.fetch("SELECT id FROM users WHERE tenant_id = $1", TENANT)]
        started = time.perf_counter()
        vectors, labels = synthetic_vectors(products, max(products // 500, 10), rng)
        ids = [f"p{i:07d}" for i in range(products)]
        digest = hashlib.sha256(b"synthetic").hexdigest()
        await conn.execute("DROP INDEX IF EXISTS product_vectors_embedding_idx")  # build after the load
        await conn.copy_records_to_table("products", columns=["tenant_id", "id", "title", "description", "genres",
                                                               "year", "content_hash", "version"], records=(
            (TENANT, pid, f"Product {i} topic {labels[i]}", f"Synthetic product {i}.",
             [GENRES[labels[i] % len(GENRES)], GENRES[(labels[i] * 7 + i) % len(GENRES)]],
             int(1950 + i % 75), digest, 1) for i, pid in enumerate(ids)))
        from pgvector.asyncpg import register_vector

        await register_vector(conn)
        await conn.copy_records_to_table("product_vectors", columns=["tenant_id", "product_id", "model",
                                                                     "content_hash", "embedding"], records=(
            (TENANT, pid, MODEL, digest, Vector(vectors[i])) for i, pid in enumerate(ids)))
        print(f"loaded {products:,} products and vectors by COPY in {time.perf_counter() - started:.1f}s")
        started = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute("SET max_parallel_maintenance_workers = 2")
        await conn.execute("CREATE INDEX product_vectors_embedding_idx ON product_vectors"
                           " USING hnsw (embedding vector_cosine_ops)")
        print(f"built the HNSW index in {time.perf_counter() - started:.1f}s")
        user_ids = [f"u{u:05d}" for u in range(users)]
        by_cluster: dict[int, list[int]] = {}
        for i, label in enumerate(labels):
            by_cluster.setdefault(int(label), []).append(i)
        clusters = list(by_cluster)
        now = datetime.now(timezone.utc)
        events = []
        for user in user_ids:
            interests = rng.choice(clusters, size=3, replace=False)
            for n in range(events_per_user):
                item = ids[random.Random(f"{user}{n}").choice(by_cluster[int(interests[n % 3])])]
                kind = ["like", "purchase", "view", "rating", "dislike"][n % 5]
                value = float(rng.integers(1, 11)) / 2 if kind == "rating" else None
                events.append((TENANT, user, item, kind, value, now - timedelta(days=int(rng.integers(0, 365)))))
        await conn.copy_records_to_table("users", columns=["tenant_id", "id"], records=[(TENANT, u) for u in user_ids])
        await conn.copy_records_to_table("interactions", columns=["tenant_id", "user_id", "product_id", "type",
                                                                  "value", "occurred_at"], records=events)
        await conn.execute("ANALYZE")
        print(f"{users:,} users with {events_per_user} interactions each")
        return user_ids
    finally:
        await conn.close()


async def explain(url: str) -> str:
    pool = await create_pool(Settings(database_url=url, db_pool_max=1))
    try:
        query = np.random.default_rng(1).standard_normal(DIM).astype(np.float32)
        rows = await pool.fetch("EXPLAIN " + NEAREST.format(order=INDEXED_ORDER), TENANT, MODEL, [Vector(query)],
                                [60], [], None, None, None)
        return "\n".join(r[0] for r in rows)
    finally:
        await pool.close()


async def measure(api_url: str, users: list[str], requests: int, concurrency: int, limit: int) -> list[float]:
    latencies: list[float] = []
    queue = iter(range(requests))

    async def client(session: aiohttp.ClientSession) -> None:
        for n in queue:
            started = time.perf_counter()
            async with session.get(f"{api_url}/v1/users/{users[n % len(users)]}/recommendations",
                                   params={"limit": limit}) as response:
                body = await response.json()
                if response.status != 200 or len(body["items"]) != limit:
                    raise RuntimeError(f"bad answer {response.status}: {str(body)[:300]}")
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return latencies


def report(name: str, latencies: list[float], wall_s: float) -> dict:
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"{name}: {len(ms)} requests  p50 {statistics.median(ms):.2f} ms  p99 {p99:.2f} ms"
          f"  {len(ms) / wall_s:.0f} requests/s")
    return {"requests": len(ms), "p50_ms": round(statistics.median(ms), 2), "p99_ms": round(p99, 2),
            "requests_per_s": round(len(ms) / wall_s, 1)}


async def own_database(server_url: str, name: str = "recommender_bench") -> str:
    """The bench's own database on that server (it drops and rebuilds an index: never the real one)."""
    conn = await asyncpg.connect(server_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')  # a constant name: identifiers cannot be parameters
    finally:
        await conn.close()
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


async def bench(args: argparse.Namespace, url: str) -> dict:
    await migrate(url)
    users = await load(url, args.products, args.users, args.events, args.seed)
    plan = await explain(url)
    print("plan of the candidate query:\n  " + plan.replace("\n", "\n  "))
    if "product_vectors_embedding_idx" not in plan:
        raise SystemExit("the candidate query does not use the HNSW index")
    log_dir = Path(tempfile.mkdtemp(prefix="recommender-bench-"))
    port = localpg.free_port()
    env = {"DATABASE_URL": url, "TENANT_ID": TENANT, "PORT": str(port), "LOG_LEVEL": "WARNING",
           "EF_SEARCH": str(args.ef_search), "DB_POOL_MAX": "8"}
    api = spawn("api", "services.api", env, log_dir, f"http://127.0.0.1:{port}/health/ready")
    try:
        wait_ready(api)
        api_url = f"http://127.0.0.1:{port}"
        await measure(api_url, users, 200, 1, args.limit)  # warm the caches and prepared statements
        started = time.perf_counter()
        sequential = await measure(api_url, users, args.requests, 1, args.limit)
        one = report("one at a time", sequential, time.perf_counter() - started)
        started = time.perf_counter()
        concurrent = await measure(api_url, users, args.requests, args.concurrency, args.limit)
        many = report(f"{args.concurrency} in flight", concurrent, time.perf_counter() - started)
        return {"products": args.products, "users": args.users, "limit": args.limit, "ef_search": args.ef_search,
                "sequential": one, "concurrent": {**many, "in_flight": args.concurrency}}
    finally:
        api.terminate()
        shutil.rmtree(log_dir, ignore_errors=True)


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"),
                       help="a server to use (the bench uses its own tables there); default: a throwaway one")
    group.add_argument("--products", type=int, default=100_000)
    group.add_argument("--users", type=int, default=1_000)
    group.add_argument("--events", type=int, default=20, help="interactions per user")
    group.add_argument("--requests", type=int, default=2_000)
    group.add_argument("--concurrency", type=int, default=8)
    group.add_argument("--limit", type=int, default=10)
    group.add_argument("--ef-search", type=int, default=ApiSettings.model_fields["ef_search"].default)
    group.add_argument("--seed", type=int, default=42)


def run(args: argparse.Namespace, result: Report) -> dict:
    if args.database_url:
        figures = asyncio.run(bench(args, asyncio.run(own_database(args.database_url))))
    else:
        folder = Path(tempfile.mkdtemp(prefix="recommender-bench-pg-"))
        url = localpg.start(folder / "data", localpg.free_port())
        try:
            figures = asyncio.run(bench(args, url))
        finally:
            localpg.stop(folder / "data")
            shutil.rmtree(folder, ignore_errors=True)
    result.table(f"Personal recommendations, {args.products:,} products, limit {args.limit}, "
                 f"ef_search {args.ef_search}", ["requests", "in flight", "p50 ms", "p99 ms", "requests/s"],
                 [[label, n, figures[key]["p50_ms"], figures[key]["p99_ms"], figures[key]["requests_per_s"]]
                  for label, key, n in (("one at a time", "sequential", 1),
                                        ("concurrent", "concurrent", args.concurrency))])
    return figures
