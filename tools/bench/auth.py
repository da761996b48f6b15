"""The auth part: what checking the API key adds to a request (`make bench PART=auth`).

Starts a throwaway PostgreSQL (or uses `--database-url`, where it creates its own database), one
product, and two api apps on real ports in this process, built by the same factory: one as
served (Bearer key, cached lookup, token bucket), one whose auth middleware is swapped for one that
sets a fixed tenant (what requests cost before keys). It alternates, request by request,
`GET /v1/products/{id}` between the two, so both see the same machine load, and prints p50/p99 of
each and the difference. Client and servers share one event loop: the absolute figures include
the client; the difference is the authentication.
"""
import argparse
import asyncio
import statistics
import time

import aiohttp
import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.api.app import create_app
from shared.auth import KeyCache, principal_key
from shared.keys import KeyRecord, create_key, key_hash
from shared.ratelimit import TokenBuckets
from shared.migrate import migrate
from shared.settings import ApiSettings
from tools.bench.gateway import on_database, own_database
from tools.bench.results import Report

TENANT = "bench-auth"
PRODUCT = "auth-p1"
BLOCK = 1  # strict alternation: both variants see the same moments of machine load


def without_auth(app: web.Application, tenant: str) -> web.Application:
    """The app with its auth middleware swapped for one that only sets a fixed tenant."""
    record = KeyRecord("fixed", tenant, "admin")

    @web.middleware
    async def fixed_tenant(request: web.Request, handler):
        request[principal_key] = record
        return await handler(request)

    [index] = [i for i, m in enumerate(app.middlewares) if getattr(m, "__name__", "") == "authenticate"]
    app.middlewares[index] = fixed_tenant  # mutable until the app starts
    return app


async def _prepare(url: str) -> str:
    await migrate(url)
    conn = await asyncpg.connect(url)
    try:
        _, key = await create_key(conn, TENANT, "read", "make bench auth")
        await conn.execute(
            "INSERT INTO products (tenant_id, id, title, description, version) VALUES ($1, $2, 'Bench film',"
            " 'A film to fetch.', 1) ON CONFLICT DO NOTHING", TENANT, PRODUCT)
        return key
    finally:
        await conn.close()


async def _time(session: aiohttp.ClientSession, url: str, n: int, latencies: list[float]) -> None:
    for _ in range(n):
        started = time.perf_counter()
        async with session.get(url) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"{url}: {response.status} {await response.text()}")
        latencies.append(time.perf_counter() - started)


async def bench(args: argparse.Namespace, url: str) -> dict:
    key = await _prepare(url)
    settings = ApiSettings(database_url=url, db_pool_max=4, rate_limit_per_s=1e6, rate_limit_burst=10**6)
    servers = {"with auth": TestServer(create_app(settings)),
               "without auth": TestServer(without_auth(create_app(settings), TENANT))}
    for server in servers.values():
        await server.start_server()
    try:
        latencies: dict[str, list[float]] = {name: [] for name in servers}
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as session:
            urls = {name: str(server.make_url(f"/v1/products/{PRODUCT}")) for name, server in servers.items()}
            for name, target in urls.items():  # wait for the pools, warm up
                for _ in range(100):
                    async with session.get(target) as response:
                        if response.status == 200:
                            break
                    await asyncio.sleep(0.1)
                await _time(session, target, 200, [])
            for _ in range(max(1, args.auth_requests // BLOCK)):
                for name, target in urls.items():
                    await _time(session, target, BLOCK, latencies[name])
    finally:
        for server in servers.values():
            await server.close()
    figures = {}
    for name, values in latencies.items():
        ms = sorted(v * 1000 for v in values)
        figures[name] = {"requests": len(ms), "p50_ms": round(statistics.median(ms), 3),
                         "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3)}
        print(f"{name}: {len(ms)} requests  p50 {figures[name]['p50_ms']:.3f} ms  p99 {figures[name]['p99_ms']:.3f} ms")
    added = round(figures["with auth"]["p50_ms"] - figures["without auth"]["p50_ms"], 3)
    # Request by request, with auth minus the one without that ran right after it: less noisy.
    paired = round(statistics.median(a - b for a, b in zip(latencies["with auth"], latencies["without auth"])) * 1000, 3)
    print(f"paired median difference {paired:.3f} ms")
    check_us = round(await cached_check_us(key), 2)
    print(f"authentication adds {added:.3f} ms at p50; a cached key check takes {check_us} us")
    return {**figures, "added_p50_ms": added, "paired_median_ms": paired, "cached_check_us": check_us}


async def cached_check_us(key: str, n: int = 100_000) -> float:
    """Microseconds per cached key check plus token-bucket take: the middleware's own work on a warm key."""
    cache, buckets = KeyCache(lambda: None, ttl_s=3600), TokenBuckets()
    cache._remember(key_hash(key), KeyRecord("k", TENANT, "read"), time.monotonic())
    started = time.perf_counter()
    for _ in range(n):
        record = await cache.lookup(key)
        buckets.take(record.key_id, 1e6, 10**6)
    return (time.perf_counter() - started) / n * 1e6


async def _bench_own(args: argparse.Namespace, server_url: str) -> dict:
    return await bench(args, await own_database(server_url, "recommender_bench_auth"))


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--auth-requests", type=int, default=2_000, help="GET /v1/products/{id} per variant")


def run(args: argparse.Namespace, result: Report) -> dict:
    figures = on_database(args.database_url, lambda server: _bench_own(args, server))
    result.table("GET /v1/products/{id}, one at a time, alternating request by request",
                 ["variant", "requests", "p50 ms", "p99 ms"],
                 [[name, figures[name]["requests"], figures[name]["p50_ms"], figures[name]["p99_ms"]]
                  for name in ("with auth", "without auth")])
    result.note(f"Authentication adds {figures['added_p50_ms']} ms at p50, {figures['paired_median_ms']} ms as the"
                " median of request-by-request differences (key cached; a database lookup every"
                f" KEY_CACHE_S); the cached check itself takes {figures['cached_check_us']} us.")
    return figures
