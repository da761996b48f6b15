"""The trainer at scale: `make bench PART=trainer`.

Synthetic interactions go through the database the way the trainer meets them: they are written
into a throwaway PostgreSQL (binary COPY of generated codes into a staging table, then
INSERT ... SELECT into the real `users` and `interactions` tables with their indexes), and the
trainer job then trains each size's tenant in a child process. Reported per size: wall seconds of
the whole job (read, build, write), each part's seconds, and the child's peak resident memory
(ru_maxrss from wait4: numpy's allocations are invisible to tracemalloc).

The data: long-tail product popularity (Zipf, exponent 1), product clusters (tastes), users with
log-normal activity (a median of about 14 interactions, a few thousand at most) who pick mostly
from two home clusters and otherwise from the global popularity, in time order, with a mix of
views, likes, ratings, purchases and dislikes.
"""
import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import numpy as np

from shared import localpg
from shared.migrate import migrate
from tools.bench.results import Report, median

KINDS = ("view", "like", "rating", "purchase", "dislike")
KIND_SHARES = (0.35, 0.30, 0.20, 0.10, 0.05)
STAGING = np.dtype([("fields", ">i2"), ("l0", ">i4"), ("user", ">i4"), ("l1", ">i4"), ("product", ">i4"),
                    ("l2", ">i4"), ("kind", ">i2"), ("l3", ">i4"), ("value", ">f4"), ("l4", ">i4"), ("time", ">f8")])
PARTS = ("load_s", "similar_s", "next_s", "write_s")


def synthetic(interactions: int, products: int, seed: int) -> dict[str, np.ndarray]:
    """Interactions as arrays (user, product, kind, value, time), sorted by user and time."""
    rng = np.random.default_rng(seed)
    users = max(interactions // 25, 1)
    activity = rng.lognormal(0.0, 1.1, users)
    sizes = np.clip(np.floor(activity / activity.sum() * interactions), 1, 5000).astype(np.int64)
    short = interactions - int(sizes.sum())
    sizes[rng.choice(users, abs(short), replace=abs(short) > users)] += np.sign(short)
    sizes = np.maximum(sizes, 1)
    count = int(sizes.sum())
    user = np.repeat(np.arange(users, dtype=np.int32), sizes)
    popularity = 1.0 / (np.arange(products) + 10.0)  # by popularity rank
    cluster = rng.integers(0, max(products // 100, 1), products)
    by_cluster = np.argsort(cluster, kind="stable")
    cdf = np.concatenate([[0.0], np.cumsum(popularity[by_cluster])])
    cdf /= cdf[-1]
    bounds = np.searchsorted(cluster[by_cluster], np.arange(cluster.max() + 2))
    home = rng.integers(0, cluster.max() + 1, (users, 2))[user, rng.integers(0, 2, count)]
    low, high = cdf[bounds[home]], cdf[bounds[home + 1]]
    rank = by_cluster[np.minimum(np.searchsorted(cdf, low + rng.random(count) * (high - low), side="right") - 1,
                                 products - 1)]
    anywhere = rng.random(count) < 0.4
    rank[anywhere] = np.minimum(np.searchsorted(np.cumsum(popularity) / popularity.sum(),
                                                rng.random(int(anywhere.sum()))), products - 1)
    product = rng.permutation(products).astype(np.int32)[rank]  # popularity unrelated to the id
    gaps = rng.exponential(86_400.0, count)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    elapsed = np.cumsum(gaps)
    time_s = elapsed - np.repeat(elapsed[first], sizes) + np.repeat(rng.uniform(0, 2 * 365 * 86_400, users), sizes)
    kind = rng.choice(len(KINDS), count, p=KIND_SHARES).astype(np.int16)
    value = np.where(kind == KINDS.index("rating"), rng.integers(1, 11, count) / 2.0, np.nan).astype(np.float32)
    return {"user": user, "product": product, "kind": kind, "value": value, "time": time_s + 1.6e9}


def _copy_stream(data: dict[str, np.ndarray], rows_per_chunk: int = 500_000):
    yield b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    total = len(data["user"])
    for start in range(0, total, rows_per_chunk):
        stop = min(start + rows_per_chunk, total)
        rows = np.zeros(stop - start, dtype=STAGING)
        rows["fields"] = 5
        for length, name, size in (("l0", "user", 4), ("l1", "product", 4), ("l2", "kind", 2), ("l3", "value", 4),
                                   ("l4", "time", 8)):
            rows[length] = size
            rows[name] = data[name][start:stop]
        yield rows.tobytes()
    yield (-1).to_bytes(2, "big", signed=True)


async def write_tenant(url: str, tenant: str, data: dict[str, np.ndarray]) -> float:
    """Store the interactions as tenant `tenant`; returns seconds."""
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING", tenant)
        await conn.execute("CREATE UNLOGGED TABLE bench_staging (user_code int4, product_code int4, kind int2,"
                           " value float4, epoch_s float8)")
        await conn.copy_to_table("bench_staging", source=_AsyncBytes(_copy_stream(data)), format="binary")
        await conn.execute("SET maintenance_work_mem = '512MB'")
        await conn.execute("INSERT INTO users (tenant_id, id) SELECT $1, 'u' || n FROM generate_series(0, $2) AS n",
                           tenant, int(data["user"].max()))
        await conn.execute(
            "INSERT INTO interactions (tenant_id, user_id, product_id, type, value, occurred_at)"
            " SELECT $1, 'u' || user_code, 'p' || product_code, ($2::text[])[kind + 1], nullif(value, 'NaN'),"
            " to_timestamp(epoch_s) FROM bench_staging", tenant, list(KINDS))
        await conn.execute("DROP TABLE bench_staging")
        await conn.execute("ANALYZE interactions")
    finally:
        await conn.close()
    return time.perf_counter() - started


class _AsyncBytes:
    def __init__(self, chunks):
        self.chunks = iter(chunks)

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        try:
            return next(self.chunks)
        except StopIteration:
            raise StopAsyncIteration from None


def train_in_child(url: str, tenant: str) -> dict:
    """Run the trainer job for one tenant in a child process: its report, timings and peak memory."""
    env = {**os.environ, "DATABASE_URL": url, "LOG_JSON": "false"}
    child = subprocess.Popen([sys.executable, "-m", "tools.bench.trainer", "--train", tenant], env=env,
                             stdout=subprocess.PIPE, text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"the trainer failed ({child.returncode})")
    figures = json.loads(output.strip().splitlines()[-1])
    figures["peak_mib"] = round(usage.ru_maxrss / 1024, 1)  # Linux: kilobytes
    return figures


async def _train(tenant: str) -> None:
    from services.trainer.job import train
    from shared.db import create_pool
    from shared.settings import TrainerSettings

    settings = TrainerSettings(db_pool_min=1, db_pool_max=2)
    pool = await create_pool(settings)
    try:
        timings: dict[str, float] = {}
        report = await train(pool, tenant, timings=timings)
    finally:
        await pool.close()
    print(json.dumps({"interactions": report.interactions, "products": report.products,
                      "seconds": round(report.seconds, 1), **{k: round(v, 1) for k, v in timings.items()}}))


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--trainer-sizes", default="1000000,10000000",
                       help="interaction counts to train on, comma-separated (default: 1M and 10M)")
    group.add_argument("--trainer-products", type=int, default=100_000)
    group.add_argument("--trainer-seed", type=int, default=7)
    group.add_argument("--trainer-runs", type=int, default=3,
                       help="trainings per size on the same stored data (the figures are their medians)")


def run(args: argparse.Namespace, result: Report) -> dict:
    sizes = [int(size) for size in args.trainer_sizes.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="recommender-bench-trainer-pg-"))
    url = localpg.start(folder / "data", localpg.free_port())
    runs = []
    try:
        asyncio.run(migrate(url))
        for size in sizes:
            tenant = f"bench-trainer-{size}"
            started = time.perf_counter()
            data = synthetic(size, args.trainer_products, args.trainer_seed)
            generated = time.perf_counter() - started
            stored = asyncio.run(write_tenant(url, tenant, data))
            del data
            print(f"{size:,} interactions generated in {generated:.0f} s, stored in {stored:.0f} s; training ...",
                  flush=True)
            each = []
            for _ in range(args.trainer_runs):
                each.append(train_in_child(url, tenant))
                print(json.dumps(each[-1]), flush=True)
            runs.append({**{key: (round(median([r[key] for r in each]), 1) if isinstance(value, float) else value)
                            for key, value in each[0].items()},
                         "runs_seconds": [r["seconds"] for r in each],
                         "load_average": [round(x, 2) for x in os.getloadavg()]})
    finally:
        localpg.stop(folder / "data")
        shutil.rmtree(folder, ignore_errors=True)
    result.table(f"Trainer on synthetic interactions, {args.trainer_products:,} products in the catalogue;"
                 f" medians of {args.trainer_runs} trainings per size",
                 ["interactions", "products trained", "seconds", "each run's seconds", "peak MiB", "read", "similar",
                  "next", "write", "load after"],
                 [[r["interactions"], r["products"], r["seconds"], " ".join(str(x) for x in r["runs_seconds"]),
                   r["peak_mib"], *(r[p] for p in PARTS), " ".join(str(x) for x in r["load_average"])] for r in runs])
    if len(runs) > 1:
        first, last = runs[0], runs[-1]
        growth = last["interactions"] / first["interactions"]
        result.table(f"Growth from {first['interactions']:,} to {last['interactions']:,} interactions "
                     f"(x{growth:.0f})", ["part", "x time"],
                     [[part, round(last[part] / max(first[part], 0.1), 1)] for part in ("seconds", *PARTS)]
                     + [["peak MiB", round(last["peak_mib"] / first["peak_mib"], 1)]])
    result.note("The dense EASE part is capped at 10,000 items (a fixed cost of about 400 MB and h^3 BLAS);"
                " the rest grows with the interactions. The machine may be shared: read the load.")
    return {"sizes": runs}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the trainer bench's child: train one tenant, print figures")
    parser.add_argument("--train", required=True, metavar="TENANT")
    asyncio.run(_train(parser.parse_args().train))
