"""Feeding the evaluation data through the real stack: the catalogue via ingest (embedded by the
workers, unchanged content reused), ratings via the interactions endpoint."""
import asyncio
import csv
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import asyncpg

from tools.eval.protocol import Rating

BATCH = 1000


def read_movies(path: Path) -> list[dict]:
    """MovieLens movies.csv (movieId,title,year,genres,overview) as ingest products."""
    products = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            genres = [] if row["genres"] == "(no genres listed)" else row["genres"].split("|")
            products.append({
                "id": row["movieId"],
                "title": row["title"],
                "description": row["overview"],
                "genres": genres,
                "year": int(row["year"]) if row["year"] else None,
            })
    return products


async def _post(session: aiohttp.ClientSession, url: str, payload: list[dict], max_wait_s: float = 3600) -> None:
    """POST, backing off on 429/503 (a full embedding backlog, a dependency restarting) for up to
    `max_wait_s`, as long as the service says Retry-After."""
    deadline = time.monotonic() + max_wait_s
    attempt = 0
    while True:
        async with session.post(url, json=payload) as response:
            if response.status in (200, 201, 202):
                return
            if response.status not in (429, 503):
                raise RuntimeError(f"POST {url} answered {response.status}: {(await response.text())[:500]}")
            retry_after = response.headers.get("Retry-After", "")
        if time.monotonic() > deadline:
            raise RuntimeError(f"POST {url} kept answering {response.status} for {max_wait_s:.0f}s")
        attempt += 1
        await asyncio.sleep(float(retry_after) if retry_after.isdigit() else min(30.0, 0.5 * 2 ** attempt))


async def load_catalogue(session: aiohttp.ClientSession, ingest_url: str, products: list[dict]) -> None:
    for start in range(0, len(products), BATCH):
        await _post(session, f"{ingest_url}/v1/products", products[start:start + BATCH])


async def wait_embedded(pool: asyncpg.Pool, tenant_id: str, model: str, ids: list[str], timeout_s: float) -> None:
    """Until every product's current text has its vector, printing progress."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        ready = await pool.fetchval(
            "SELECT count(*) FROM products p JOIN product_vectors v ON v.tenant_id = p.tenant_id"
            " AND v.product_id = p.id AND v.model = $2 AND v.content_hash = p.content_hash"
            " WHERE p.tenant_id = $1 AND p.id = ANY($3::text[])",
            tenant_id, model, ids,
        )
        print(f"\r  embedded {ready}/{len(ids)}", end="", flush=True)
        if ready == len(ids):
            print()
            return
        if loop.time() > deadline:
            raise TimeoutError(f"only {ready} of {len(ids)} products embedded after {timeout_s:.0f}s")
        await asyncio.sleep(2)


async def load_ratings(session: aiohttp.ClientSession, ingest_url: str, ratings: list[Rating],
                       concurrency: int = 4) -> None:
    """Each rating as a rating at its own time; the service reads its stars (`shared.interactions`)."""
    by_user: dict[str, list[Rating]] = defaultdict(list)
    for rating in ratings:
        by_user[rating.user_id].append(rating)
    requests = []
    for user_id, own in by_user.items():
        events = [
            {"product_id": r.item_id, "type": "rating", "value": r.value,
             "occurred_at": datetime.fromtimestamp(r.timestamp_s, timezone.utc).isoformat()}
            for r in own
        ]
        for start in range(0, len(events), BATCH):
            requests.append((f"{ingest_url}/v1/users/{user_id}/interactions", events[start:start + BATCH]))
    gate = asyncio.Semaphore(concurrency)

    async def send(url, payload):
        async with gate:
            await _post(session, url, payload)

    await asyncio.gather(*(send(url, payload) for url, payload in requests))


async def reset_tenant(pool: asyncpg.Pool, tenant_id: str) -> None:
    """The evaluation's own tenant: its interactions and users start empty each run; its products
    and vectors stay, so unchanged content is not embedded again."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING", tenant_id)
        await conn.execute("DELETE FROM interactions WHERE tenant_id = $1", tenant_id)
        await conn.execute("DELETE FROM users WHERE tenant_id = $1", tenant_id)
