"""The gateway part: personal-recommendation latency at catalogue scale (`make bench PART=gateway`).

For each catalogue size (`--products 10000,100000`): a throwaway PostgreSQL (or `--database-url`,
where it creates its own database) gets synthetic products, users with 20 to 2,000 interactions
and a trained collaborative model (`gateway_data.py`). Then, in one run:
- the ceiling: the request path's own SQL statements, recorded per user and replayed bare from
  asyncpg (no HTTP, no ranking) on as many connections as an api process has (`--pool`), one at a
  time, and with 16 in flight right before each server's run with 16 in flight (`--rounds` times,
  the median ratio counts); and the nearest-neighbour statement alone;
- the api as `--api-processes` processes sharing one port (SO_REUSEPORT):
  `GET /v1/users/{id}/recommendations` one at a time (all users, the 2,000-item users alone, and
  users without history) and with 16 in flight, counting errors;
- recall@10 of the served HNSW search against an exact scan;
- the stack's floor (`floor.py`): the bare users' recorded statements served over HTTP by aiohttp
  and asyncpg with the api's answers as stored bytes, one at a time and 16 in flight (the most any
  api on this stack reaches);
- the api without its ranking (`unranked.py`): the real api, each of the bare users ranked once and
  then served by repeating that request's statements and page, one at a time and 16 in flight
  (what the api would reach with a ranking that cost nothing);
- the CPU each request costs at 16 in flight: the machine's, the api processes', the client's (and
  one at a time the serving process's);
- the CPU of ranking and rendering alone: the recorded requests' Store answers replayed without I/O;
- where the server runs on this machine, the bare statements and the api with 16 in flight again
  with the cores split: the server's processes on one half, the api and this client on the other,
  as when the database has a machine of its own (the ratio then says whether the api keeps pace
  with its database; on one shared machine it says what share of the CPU the api itself takes).
"""
import argparse
import asyncio
import contextlib
import os
import pickle
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import numpy as np
import psutil

from services.api.app import query_settings
from services.api.neighbours import CollaborativeModels
from services.api.recommend import DEFAULT_STRATEGY, Request, ranked_depth, recommend
from services.api.store import EXACT_ORDER, NEAREST, Filters, Store, explain_nearest, indexed_order
from shared import localpg
from shared.db import create_pool
from shared.keys import create_key
from shared.migrate import migrate
from shared.settings import ApiSettings, Settings
from tests.processes import spawn, wait_ready
from tools.bench.cores import cores_apart, server_process
from tools.bench.gateway_data import DIM, GENRES, LONG_HISTORY, MODEL, TENANT, load
from tools.bench.replay import Answers, ranking_cpu_ms
from tools.bench.results import Report

RARE_FILTER = {"genre": GENRES[5], "year_from": "2020"}  # Western; years run 1950-2024 by product number
RARE_FILTER_NAME = "Western from 2020: one product in 130"
TARGETS = {"p50_ms": 10.0, "p99_ms": 30.0, "ratio_16": 0.8, "recall_at_10": 0.95}
SHARED_BUFFERS = "1GB"  # of the throwaway server


class Recording:
    """A connection that notes each statement it runs, to replay them bare."""

    def __init__(self, conn: asyncpg.Connection):
        self.conn, self.statements = conn, []

    async def fetch(self, query: str, *args):
        self.statements.append(("fetch", query, args))
        return await self.conn.fetch(query, *args)

    async def fetchrow(self, query: str, *args):
        self.statements.append(("fetchrow", query, args))
        return await self.conn.fetchrow(query, *args)


def _pool(url: str, ef_search: int, size: int):
    """Connections set up as the api's (its session settings, no reset on release), without its
    per-statement timeout: the ceiling measures, it does not give up (on a busy machine a statement
    of the 16-in-flight replay took over 4 s)."""
    settings = ApiSettings(database_url=url, ef_search=ef_search, db_pool_min=size, db_pool_max=size,
                           db_command_timeout_s=None)
    return create_pool(settings, server_settings=query_settings(settings), keep_session=True)


async def record(url: str, users: list[str], ef_search: int, limit: int) -> tuple[dict[str, list], list]:
    """Each user's request as the statements the api runs for it (parameters included), and as
    (request, user, the Store's answers, the page) to replay without I/O (`tools.bench.replay`)."""
    recorded, answered = {}, []
    pool = await _pool(url, ef_search, 1)
    models = CollaborativeModels(1)
    try:
        async with pool.acquire() as conn:
            await models.get(conn, TENANT, 0)  # in memory, as in the api (loaded once per training run)
            for user in users:
                recording = Recording(conn)
                request = Request(TENANT, MODEL, DEFAULT_STRATEGY, Filters(), limit, 0, ranked_depth(limit),
                                  dimension=DIM)
                answers = Answers(Store(recording, models))
                page = await recommend(answers, request, user)
                recorded[user] = recording.statements
                answered.append((request, user, answers.kept, page))
    finally:
        await pool.close()
    return recorded, answered


async def bare(url: str, ef_search: int, requests: list[list], concurrency: int,
               connections: int) -> tuple[list[float], float]:
    """Replays each request's statements on one pooled connection, `concurrency` requests at once on
    at most `connections` (as many as one api process has: 16 connections for 16 requests contend
    more on the server's cores: the same statements went 4-8 % slower on them); (latencies, wall seconds)."""
    pool = await _pool(url, ef_search, min(concurrency, connections))
    latencies: list[float] = []
    queue = iter(range(len(requests)))

    async def client() -> None:
        for n in queue:
            started = time.perf_counter()
            async with pool.acquire() as conn:
                for method, query, args in requests[n]:
                    await getattr(conn, method)(query, *args)
            latencies.append(time.perf_counter() - started)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return latencies, time.perf_counter() - started
    finally:
        await pool.close()


async def recall_at_10(url: str, ef_search: int, queries: list[np.ndarray]) -> float:
    """Share of the exact 10 nearest that the served (HNSW) query returns, over `queries` (the
    interest centroids the recorded requests sent)."""
    pool = await _pool(url, ef_search, 1)
    hits = 0
    try:
        async with pool.acquire() as conn:
            for query in queries:
                found = []
                for order in (indexed_order(DIM), EXACT_ORDER):
                    rows = await conn.fetch(NEAREST.format(order=order), TENANT, MODEL, [query], 10, "", None, None, None)
                    found.append({row["product_id"] for row in rows})
                hits += len(found[0] & found[1])
    finally:
        await pool.close()
    return hits / (10 * len(queries))


async def read_key(url: str) -> str:
    """A read key of the bench tenant (a new one each run)."""
    conn = await asyncpg.connect(url)
    try:
        return (await create_key(conn, TENANT, "read", "make bench"))[1]
    finally:
        await conn.close()


async def measure(api_url: str, users: list[str], requests: int, concurrency: int,
                  limit: int, key: str, **query: str) -> tuple[list[float], float, int]:
    """(latencies of good answers, wall seconds, errors) of `requests` requests cycling through
    `users`; `query`: more parameters (a genre)."""
    latencies: list[float] = []
    errors = 0
    queue = iter(range(requests))

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        for n in queue:
            started = time.perf_counter()
            async with session.get(f"{api_url}/v1/users/{users[n % len(users)]}/recommendations",
                                   params={"limit": limit, **query}) as response:
                body = await response.json()
                if response.status != 200 or len(body["items"]) != limit:
                    errors += 1
                    if errors <= 3:
                        print(f"  bad answer {response.status}: {str(body)[:300]}")
                    continue
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers={"Authorization": f"Bearer {key}"}) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        return latencies, time.perf_counter() - started, errors


class CpuMeter:
    """CPU time spent between `start` and `per_request`: by the whole machine (the server, the api,
    this client, anything else), by the api processes and by this process (the client). At 16 in
    flight every part is busy at once, so requests/s is about cores / (CPU per request)."""

    def __init__(self, pids: list[int] = ()):
        self.processes = [psutil.Process(pid) for pid in pids]

    def _now(self) -> tuple[float, float, float]:
        machine = psutil.cpu_times()
        busy = machine.user + machine.nice + machine.system + machine.irq + machine.softirq
        return busy, sum(sum(p.cpu_times()[:2]) for p in self.processes), time.process_time()

    def _each(self) -> list[float]:
        return [sum(p.cpu_times()[:2]) for p in self.processes]

    def start(self) -> "CpuMeter":
        self.started, self.started_each = self._now(), self._each()
        return self

    def shares(self) -> list[float]:
        """Each api process's part of the api CPU since `start`: processes sharing a port get
        connections by a hash of their addresses, so with few client connections some get none."""
        spent = [now - then for now, then in zip(self._each(), self.started_each)]
        return [round(x / max(sum(spent), 1e-9), 2) for x in spent]

    def per_request(self, requests: int) -> dict:
        """Milliseconds of CPU per request: `machine`, `api` and `client`."""
        spent = [(now - then) * 1000 / max(requests, 1) for now, then in zip(self._now(), self.started)]
        return dict(zip(("machine", "api", "client"), (round(x, 2) for x in spent)))


@contextlib.contextmanager
def serving(count: int, env: dict, log_dir: Path):
    """`count` api processes sharing one port (REUSE_PORT in `env`), ready; stopped on the way out."""
    apis = [spawn(f"api{i}", "services.api", env, log_dir, f"http://127.0.0.1:{env['PORT']}/health/ready")
            for i in range(count)]
    try:
        for api in apis:
            wait_ready(api)
        yield apis
    finally:
        for api in apis:
            api.terminate()


async def in_flight_16(api_url: str, users: list[str], args: argparse.Namespace, key: str, apis) -> dict:
    """`args.requests` requests with 16 in flight: latencies, requests/s, errors, CPU per request and
    each process's part of the api CPU."""
    meter = CpuMeter([api.popen.pid for api in apis]).start()
    latencies, wall, errors = await measure(api_url, users, args.requests, 16, args.limit, key)
    return {**summary(latencies, wall), "errors": errors, "cpu_ms": meter.per_request(args.requests),
            "shares": meter.shares()}


async def paired_16(url: str, replay: list[list], served: Callable[[], Awaitable[dict]],
                    args: argparse.Namespace) -> dict:
    """`served()` (16 in flight) right after the bare statements replayed with 16 in flight, `args.rounds`
    times: the machine's speed drifts by a quarter within the hour here, and a ceiling measured
    minutes before would move the ratio with it. The round with the median ratio, its bare replay
    under `bare`, and every round's ratio in order under `ratios`."""
    rounds = []
    for _ in range(args.rounds):
        meter = CpuMeter().start()
        latencies, wall = await bare(url, args.ef_search, replay, 16, args.pool)
        ceiling = {**summary(latencies, wall), "cpu_ms": meter.per_request(len(replay))}
        result = await served()
        rounds.append({**result, "ratio": round(result["rps"] / ceiling["rps"], 3), "bare": ceiling})
    median = sorted(rounds, key=lambda r: r["ratio"])[len(rounds) // 2]
    return {**median, "ratios": [r["ratio"] for r in rounds]}


async def bodies(api_url: str, users: list[str], limit: int, key: str) -> dict[str, bytes]:
    """The api's answer to each of `users`, as bytes (the floor sends them back as they are)."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as session:
        answers = {}
        for user in users:
            async with session.get(f"{api_url}/v1/users/{user}/recommendations", params={"limit": limit}) as response:
                response.raise_for_status()
                answers[user] = await response.read()
        return answers


async def stand_in(name: str, module: str, module_args: tuple, users: list[str], replay: list[list],
                   args: argparse.Namespace, key: str, env: dict, log_dir: Path) -> dict:
    """A process that serves the api's route for `users` in the api's place (`floor.py`,
    `unranked.py`), warmed with each user once: one at a time (`one`: its latencies and CPU) and 16
    in flight against the bare `replay` (`paired_16`)."""
    url = f"http://127.0.0.1:{env['PORT']}"
    process = spawn(name, module, env, log_dir, f"{url}/health/ready", module_args)
    try:
        wait_ready(process)
        await measure(url, users, len(users), 4, args.limit, key)  # each user once (unranked.py ranks it then)
        await measure(url, users, 300, 16, args.limit, key)  # warm its pool
        meter = CpuMeter([process.popen.pid]).start()
        latencies, wall, errors = await measure(url, users, args.requests, 1, args.limit, key)
        one = {**summary(latencies, wall), "cpu_ms": meter.per_request(args.requests)}
        many = await paired_16(env["DATABASE_URL"], replay, lambda: in_flight_16(url, users, args, key, [process]),
                               args)
        return {**many, "one": one, "errors": many["errors"] + errors}
    finally:
        process.terminate()


async def stack_floor(recorded: dict[str, list], answers: dict[str, bytes], replay: list[list],
                      args: argparse.Namespace, key: str, env: dict, log_dir: Path) -> dict:
    """`floor.py` serving the recorded users (the bare ceiling's requests, by HTTP)."""
    path = log_dir / "floor.pickle"
    path.write_bytes(pickle.dumps({user: (recorded[user], answers[user]) for user in recorded}))
    return await stand_in("floor", "tools.bench.floor", (str(path),), list(recorded), replay, args, key, env, log_dir)


def _rss_mib(pid: int) -> float:
    """Resident memory of a process (what each extra api process costs, besides its connections)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def summary(latencies: list[float], wall_s: float) -> dict:
    ms = sorted(x * 1000 for x in latencies)
    if not ms:
        return {"requests": 0, "p50_ms": None, "p99_ms": None, "rps": 0.0}
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return {"requests": len(ms), "p50_ms": round(statistics.median(ms), 2), "p99_ms": round(p99, 2),
            "rps": round(len(ms) / wall_s, 1)}


def database_url(server_url: str, name: str) -> str:
    """The URL of database `name` on that server."""
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


async def own_database(server_url: str, name: str = "recommender_bench") -> str:
    """The bench's own database on that server (it drops and rebuilds an index: never the real one)."""
    conn = await asyncpg.connect(server_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')  # a constant name: identifiers cannot be parameters
    finally:
        await conn.close()
    return database_url(server_url, name)


async def bench(args: argparse.Namespace, url: str, products: int) -> dict:
    await migrate(url)
    lengths = await load(url, products, args.users, args.long_users, args.seed, args.dense_items)
    rng = np.random.default_rng(args.seed)
    users = sorted(lengths)
    rng.shuffle(users)
    long_users = [u for u in users if lengths[u] >= LONG_HISTORY * 0.95]
    pool = await create_pool(Settings(database_url=url, db_pool_max=1))
    try:
        async with pool.acquire() as conn:
            plan = await explain_nearest(conn, TENANT, MODEL, rng.standard_normal(DIM).astype(np.float32), 60,
                                         dimension=DIM)
            filtered = await explain_nearest(conn, TENANT, MODEL, rng.standard_normal(DIM).astype(np.float32), 60,
                                             Filters(genre=GENRES[0]), dimension=DIM)
    finally:
        await pool.close()
    if "product_vectors_embedding_" not in plan:
        raise SystemExit("the candidate query does not use the HNSW index:\n" + plan)
    if "EXISTS(SubPlan" not in filtered:  # hashing every product of the genre grows with the catalogue
        raise SystemExit("a genre filter is not checked on each candidate's product row:\n" + filtered)

    recorded, answered = await record(url, users[:args.bare_users], args.ef_search, args.limit)
    ranking_cpu = await ranking_cpu_ms(answered)
    print(f"ranking and rendering in process, without I/O: {ranking_cpu} ms of CPU per request")
    queries = [vector for statements in recorded.values() for _, query, sent in statements
               if "unnest($3::vector[]" in query for vector in sent[2]]
    recall = await recall_at_10(url, args.ef_search, queries)
    print(f"recall@10 of the served HNSW search against an exact scan ({len(queries)} interest centroids"
          f" the requests sent): {recall:.3f}")
    trips = [len(statements) for statements in recorded.values()]
    replay = [recorded[users[n % args.bare_users]] for n in range(args.requests)]
    nearest_only = [[s for s in statements if "unnest($3::vector[]" in s[1]][:1] for statements in replay]
    ceiling = {}  # with 16 in flight, the bare statements are replayed beside each server (`paired_16`)
    for label, requests, concurrency in (("bare", replay, 1), ("nearest", nearest_only, 1),
                                         ("nearest", nearest_only, 16)):
        meter = CpuMeter().start()
        latencies, wall = await bare(url, args.ef_search, requests, concurrency, args.pool)
        ceiling[f"{label}_{concurrency}"] = {**summary(latencies, wall), "cpu_ms": meter.per_request(len(requests))}
        print(f"{label} statements, {concurrency} in flight: {ceiling[f'{label}_{concurrency}']}")

    log_dir = Path(tempfile.mkdtemp(prefix="recommender-bench-"))
    port = localpg.free_port()
    key = await read_key(url)
    env = {"DATABASE_URL": url, "PORT": str(port), "LOG_LEVEL": "WARNING", "RATE_LIMIT_PER_S": "1000000",
           "RATE_LIMIT_BURST": "1000000", "EF_SEARCH": str(args.ef_search), "DB_POOL_MAX": str(args.pool),
           "REUSE_PORT": "true"}
    api_url = f"http://127.0.0.1:{port}"
    try:
        with serving(args.api_processes, env, log_dir) as apis:
            await measure(api_url, users, 300, 4, args.limit, key)  # warm every process's pool and caches
            meter = CpuMeter([api.popen.pid for api in apis]).start()
            latencies, wall, errors_one = await measure(api_url, users, args.requests, 1, args.limit, key)
            one = {**summary(latencies, wall), "cpu_ms": meter.per_request(args.requests)}
            print(f"api, one at a time: {one}")
            long_latencies, long_wall, long_errors = await measure(api_url, long_users, max(200, args.requests // 4),
                                                                   1, args.limit, key)
            long = summary(long_latencies, long_wall)
            print(f"api, one at a time, {LONG_HISTORY:,}-item histories: {long}")
            cold_latencies, cold_wall, cold_errors = await measure(api_url, [f"new-user-{i}" for i in range(100)], 200,
                                                                   1, args.limit, key)
            cold = summary(cold_latencies, cold_wall)
            print(f"api, one at a time, users without history (the popularity continuation): {cold}")
            genre_latencies, genre_wall, genre_errors = await measure(api_url, users, 200, 1, args.limit, key,
                                                                      genre=GENRES[0])
            genre = summary(genre_latencies, genre_wall)
            print(f"api, one at a time, with a genre filter ({GENRES[0]}): {genre}")
            rare_latencies, rare_wall, rare_errors = await measure(api_url, users, 200, 1, args.limit, key,
                                                                   **RARE_FILTER)
            rare = summary(rare_latencies, rare_wall)
            print(f"api, one at a time, with a rare filter ({RARE_FILTER_NAME}): {rare}")
            many = await paired_16(url, replay, lambda: in_flight_16(api_url, users, args, key, apis), args)
            print(f"api, 16 in flight (the bare statements just before under 'bare'): {many}")
            rss_mib = [_rss_mib(api.popen.pid) for api in apis]
            answers = await bodies(api_url, list(recorded), args.limit, key)
        by_processes = [{"api_processes": args.api_processes, **many}]
        for count in (int(text) for text in filter(None, args.more_processes.split(","))):
            with serving(count, env, log_dir) as apis:
                await measure(api_url, users, 50 * count + 100, 16, args.limit, key)  # warm every process
                by_processes.append({"api_processes": count, **await paired_16(
                    url, replay, lambda: in_flight_16(api_url, users, args, key, apis), args)})
                print(f"api, 16 in flight, {count} processes: {by_processes[-1]}")
        floor = await stack_floor(recorded, answers, replay, args, key, env, log_dir)
        print(f"the stack's floor (one at a time under 'one'), 16 in flight: {floor}")
        unranked = await stand_in("unranked", "tools.bench.unranked", (), list(recorded), replay, args, key, env,
                                  log_dir)
        print(f"the api without its ranking (one at a time under 'one'), 16 in flight: {unranked}")
        apart = await own_cores(url, replay, users, args, key, env, log_dir)
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
    return {
        "products": products, "p50_ms": one["p50_ms"], "p99_ms": one["p99_ms"], "p99_ms_long_history": long["p99_ms"],
        "rps_1": one["rps"], "rps_16": many["rps"], "bare_rps_16": many["bare"]["rps"],
        "ratio_16": many["ratio"], "ratios_16": many["ratios"], "recall_at_10": round(recall, 4),
        "round_trips": max(trips), "round_trips_mean": round(float(np.mean(trips)), 2),
        "errors": sum(row["errors"] for row in by_processes) + long_errors + errors_one + cold_errors + genre_errors
        + rare_errors + (apart["errors"] if apart else 0),
        "p50_ms_no_history": cold["p50_ms"], "p99_ms_no_history": cold["p99_ms"],
        "p50_ms_genre": genre["p50_ms"], "p99_ms_genre": genre["p99_ms"], "p50_ms_rare_filter": rare["p50_ms"],
        "p99_ms_rare_filter": rare["p99_ms"], "p50_ms_long_history": long["p50_ms"], "p50_ms_16": many["p50_ms"],
        "p99_ms_16": many["p99_ms"], "bare_rps_1": ceiling["bare_1"]["rps"], "nearest_rps_1": ceiling["nearest_1"]["rps"],
        "nearest_rps_16": ceiling["nearest_16"]["rps"], "bare_p50_ms": ceiling["bare_1"]["p50_ms"],
        "users": len(users), "long_history_users": len(long_users), "api_processes": args.api_processes,
        "api_rss_mib": rss_mib, "db_connections_per_api": args.pool,
        "by_api_processes": by_processes, "own_cores": apart,
        "cpu_ms_bare_16": many["bare"]["cpu_ms"]["machine"], "cpu_ms_16": many["cpu_ms"]["machine"],
        "api_cpu_ms_16": many["cpu_ms"]["api"], "client_cpu_ms_16": many["cpu_ms"]["client"],
        "ranking_cpu_ms": ranking_cpu, "floor_rps_16": floor["rps"], "floor_ratio_16": floor["ratio"],
        "floor_ratios_16": floor["ratios"],
        "floor_p50_ms": floor["one"]["p50_ms"], "floor_p99_ms": floor["one"]["p99_ms"],
        "floor_cpu_ms_16": floor["cpu_ms"]["api"], "floor_errors": floor["errors"],
        "unranked_rps_16": unranked["rps"], "unranked_ratio_16": unranked["ratio"],
        "unranked_ratios_16": unranked["ratios"],
        "unranked_p50_ms": unranked["one"]["p50_ms"], "unranked_cpu_ms_16": unranked["cpu_ms"]["api"],
        "unranked_errors": unranked["errors"], "api_cpu_ms_1": one["cpu_ms"]["api"],
        "floor_cpu_ms_1": floor["one"]["cpu_ms"]["api"], "unranked_cpu_ms_1": unranked["one"]["cpu_ms"]["api"],
        "ef_search": args.ef_search, "limit": args.limit,
    }


async def own_cores(url: str, replay: list[list], users: list[str], args: argparse.Namespace, key: str, env: dict,
                    log_dir: Path) -> dict | None:
    """The bare statements and one api process with 16 in flight, the server's processes on cores
    of their own (`cores_apart`); None when the server is not on this machine or it has one core."""
    server = await server_process(url)
    if server is None or len(psutil.Process().cpu_affinity()) < 2:
        print("the server's cores cannot be set apart here: no run on cores of its own")
        return None
    try:
        with cores_apart(server):
            latencies, wall = await bare(url, args.ef_search, replay, 16, args.pool)
            ceiling = summary(latencies, wall)
            with serving(1, env, log_dir) as apis:
                await measure(f"http://127.0.0.1:{env['PORT']}", users, 300, 16, args.limit, key)  # warm
                many = await in_flight_16(f"http://127.0.0.1:{env['PORT']}", users, args, key, apis)
    except psutil.AccessDenied:
        print("the server's processes belong to another user: no run on cores of its own")
        return None
    result = {"bare_rps_16": ceiling["rps"], "rps_16": many["rps"], "ratio_16": round(many["rps"] / ceiling["rps"], 3),
              "p50_ms_16": many["p50_ms"], "p99_ms_16": many["p99_ms"], "api_cpu_ms_16": many["cpu_ms"]["api"],
              "errors": many["errors"]}
    print(f"16 in flight, the server on cores of its own: {result}")
    return result


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"),
                       help="a server to use (the bench uses its own tables there); default: a throwaway one")
    group.add_argument("--products", default="10000,100000",
                       help="catalogue sizes, comma-separated; the figures at the top of bench.json are for 100,000")
    group.add_argument("--users", type=int, default=1_000)
    group.add_argument("--long-users", type=int, default=50, help=f"users with {LONG_HISTORY:,} interactions")
    group.add_argument("--dense-items", type=int, default=2_000,
                       help="products the trainer solves EASE for exactly (the rest get cosine neighbours)")
    group.add_argument("--requests", type=int, default=2_000)
    group.add_argument("--bare-users", type=int, default=300, help="users whose requests are replayed bare")
    group.add_argument("--api-processes", type=int, default=1)
    group.add_argument("--more-processes", default="",
                       help="api process counts measured again at 16 in flight after the main run, comma-separated"
                            " (e.g. 2,4,8 on a machine with cores to spare)")
    group.add_argument("--rounds", type=int, default=3,
                       help="16 in flight: rounds of the bare statements, then the server (the median ratio counts)")
    group.add_argument("--pool", type=int, default=8, help="database connections per api process")
    group.add_argument("--limit", type=int, default=10)
    group.add_argument("--ef-search", type=int, default=ApiSettings.model_fields["ef_search"].default)
    group.add_argument("--seed", type=int, default=42)


async def _all_sizes(args: argparse.Namespace, server_url: str) -> list[dict]:
    """Each size in a database of its own on that server, so a later run reuses it."""
    sizes = []
    for size in (int(text) for text in args.products.split(",")):
        sizes.append(await bench(args, await own_database(server_url, f"recommender_bench_{size}"), size))
    return sizes


def on_database(server_url: str | None, measure_on):
    """`measure_on(server url)` on that server, else on a throwaway one; it makes its own databases there."""
    if server_url:
        return asyncio.run(measure_on(server_url))
    folder = Path(tempfile.mkdtemp(prefix="recommender-bench-pg-"))
    # Shared buffers as a database server of a 100,000-product catalogue would have (the default
    # 128 MB holds less than the HNSW index; the rest comes from the OS cache at a cost per page).
    url = localpg.start(folder / "data", localpg.free_port(), settings={"shared_buffers": SHARED_BUFFERS})
    try:
        return asyncio.run(measure_on(url))
    finally:
        localpg.stop(folder / "data")
        shutil.rmtree(folder, ignore_errors=True)


def run(args: argparse.Namespace, result: Report) -> dict:
    sizes = on_database(args.database_url, lambda url: _all_sizes(args, url))
    keys = ["products", "p50_ms", "p99_ms", "p99_ms_long_history", "rps_1", "rps_16", "bare_rps_16", "ratio_16",
            "recall_at_10", "round_trips", "errors"]
    result.table(f"Personal recommendations (hybrid, limit {args.limit}, ef_search {args.ef_search},"
                 f" {args.api_processes} api process(es); targets at 100,000: p50 <= 10 ms, p99 <= 30 ms,"
                 " ratio_16 >= 0.8, recall@10 >= 0.95, no errors)", keys, [[f[k] for k in keys] for f in sizes])
    result.table("The ceiling: the same statements replayed bare from asyncpg, and the nearest-neighbour one alone",
                 ["products", "bare rps 1", "bare rps 16", "bare p50 ms", "nearest rps 1", "nearest rps 16"],
                 [[f["products"], f["bare_rps_1"], f["bare_rps_16"], f["bare_p50_ms"], f["nearest_rps_1"],
                   f["nearest_rps_16"]] for f in sizes])
    result.table("One at a time: the 2,000-item users alone, users without history (popular products),"
                 f" a genre filter ({GENRES[0]}: one product in six to eight) and a rare filter ({RARE_FILTER_NAME})",
                 ["products", "p50 ms, 2,000 items", "p99 ms, 2,000 items", "p50 ms, no history", "p99 ms, no history",
                  "p50 ms, genre", "p99 ms, genre", "p50 ms, rare filter", "p99 ms, rare filter"],
                 [[f["products"], f["p50_ms_long_history"], f["p99_ms_long_history"], f["p50_ms_no_history"],
                   f["p99_ms_no_history"], f["p50_ms_genre"], f["p99_ms_genre"], f["p50_ms_rare_filter"],
                   f["p99_ms_rare_filter"]] for f in sizes])
    result.table("CPU per request at 16 in flight (ms; every part shares the machine's cores, so requests/s is"
                 " about cores x 1000 / machine CPU, and ratio_16 about bare CPU / api-path CPU)",
                 ["products", "bare: machine", "api path: machine", "api processes", "HTTP client", "the rest (server)",
                  "ranking alone (no I/O, not under load)"],
                 [[f["products"], f["cpu_ms_bare_16"], f["cpu_ms_16"], f["api_cpu_ms_16"], f["client_cpu_ms_16"],
                   round(f["cpu_ms_16"] - f["api_cpu_ms_16"] - f["client_cpu_ms_16"], 2), f["ranking_cpu_ms"]]
                  for f in sizes])
    result.table("The stack's floor, 16 in flight: the bare ceiling's requests over HTTP to one aiohttp process that"
                 " runs each user's statements on asyncpg and sends the api's stored answer (no ranking, key check,"
                 " parsing or JSON encoding): the most any api on aiohttp and asyncpg reaches here; and the same"
                 " requests one at a time beside the bare statements' and the api's latency",
                 ["products", "bare rps 16", "floor rps 16", "floor ratio", "its CPU ms per request",
                  "api rps 16", "api ratio", "api CPU ms per request", "bare p50 ms", "floor p50 ms", "api p50 ms",
                  "errors"],
                 [[f["products"], f["bare_rps_16"], f["floor_rps_16"], f["floor_ratio_16"], f["floor_cpu_ms_16"],
                   f["rps_16"], f["ratio_16"], f["api_cpu_ms_16"], f["bare_p50_ms"], f["floor_p50_ms"], f["p50_ms"],
                   f["floor_errors"]] for f in sizes])
    result.table("The api without its ranking (`unranked.py`: the api, each user ranked once, later requests repeating"
                 " that request's statements and giving its page again) beside the floor and the api: what the"
                 " ranking costs. CPU: ms of the serving process's CPU per request, at 16 in flight and one at a time",
                 ["products", "floor ratio", "unranked ratio", "api ratio", "floor CPU 16", "unranked CPU 16",
                  "api CPU 16", "floor CPU 1", "unranked CPU 1", "api CPU 1", "floor p50 ms", "unranked p50 ms",
                  "api p50 ms", "unranked errors"],
                 [[f["products"], f["floor_ratio_16"], f["unranked_ratio_16"], f["ratio_16"], f["floor_cpu_ms_16"],
                   f["unranked_cpu_ms_16"], f["api_cpu_ms_16"], f["floor_cpu_ms_1"], f["unranked_cpu_ms_1"],
                   f["api_cpu_ms_1"], f["floor_p50_ms"], f["unranked_p50_ms"], f["p50_ms"], f["unranked_errors"]]
                  for f in sizes])
    result.table(f"16 in flight round by round ({args.rounds} rounds, each server right after the bare statements;"
                 " the round with the median ratio gives the figures above)",
                 ["products", "api ratios", "floor ratios", "unranked ratios"],
                 [[f["products"], " ".join(map(str, f["ratios_16"])), " ".join(map(str, f["floor_ratios_16"])),
                   " ".join(map(str, f["unranked_ratios_16"]))] for f in sizes])
    if args.more_processes:
        result.table("16 in flight by api processes (the same bare ceiling; each process's part of the api CPU:"
                     " the port hands each of the 16 client connections to one process by a hash)",
                     ["products", "api processes", "rps 16", "ratio", "p50 ms", "p99 ms", "machine CPU ms",
                      "api CPU ms", "parts of the api CPU", "errors"],
                     [[f["products"], row["api_processes"], row["rps"], row["ratio"], row["p50_ms"], row["p99_ms"],
                       row["cpu_ms"]["machine"], row["cpu_ms"]["api"], " ".join(map(str, row["shares"])),
                       row["errors"]] for f in sizes for row in f["by_api_processes"]])
    apart = [f for f in sizes if f.get("own_cores")]
    if apart:
        result.table("16 in flight with the server's processes on half the cores and the api and the client on the"
                     " other half (as when the database has a machine of its own): the same bare statements, one api"
                     " process",
                     ["products", "bare rps 16", "rps 16", "ratio", "p50 ms", "p99 ms", "api CPU ms", "errors"],
                     [[f["products"], *(f["own_cores"][k] for k in ("bare_rps_16", "rps_16", "ratio_16", "p50_ms_16",
                                                                     "p99_ms_16", "api_cpu_ms_16", "errors"))]
                      for f in apart])
    growth = ["p50_ms", "p99_ms", "p99_ms_long_history", "rps_1", "rps_16", "bare_rps_16", "recall_at_10"]
    if len(sizes) > 1:
        result.table("How each figure grows: the value at this size divided by the value at the size before",
                     ["products", *growth],
                     [[f"{now['products']:,} / {before['products']:,}",
                       *(round(now[k] / before[k], 2) if before[k] else None for k in growth)]
                      for before, now in zip(sizes, sizes[1:])])
    result.note(f"Each api process: {sizes[-1]['api_rss_mib']} MiB resident after the run and up to"
                f" {args.pool} database connections; the server: shared_buffers {SHARED_BUFFERS} when the"
                " bench starts its own (else the given server's). Each process's part of the api CPU at 16 in"
                f" flight: {sizes[-1]['by_api_processes'][0]['shares']} (the port hands each of the 16 client connections to"
                " one process by a hash: with several processes, some can get none).")
    main = next((f for f in sizes if f["products"] == 100_000), sizes[-1])
    return {**main, "sizes": sizes}
