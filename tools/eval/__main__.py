"""`make eval`: the offline evaluation protocol, run through the real stack.

    python -m tools.eval --movies M.csv --ratings R.csv [R2.csv ...] [--eval-users FILE]

The catalogue goes through ingest -> RabbitMQ -> embedder workers -> pgvector (a running stack:
`make up`), ratings through the interactions endpoint, the collaborative model is trained by the
trainer job, and every method ranks through the api's recommendations endpoint. It uses its own
tenant (a write key made for the run, revoked after it), so it never mixes with the demo
catalogue, and its own ingest and api processes.
"""
import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from shared.db import create_pool
from shared.keys import create_key, key_id_of, revoke_key
from shared.localpg import free_port
from shared.settings import Settings
from tools import procs
from tools.eval import loader, report
from tools.eval.protocol import EvalUser, rare_products, read_ratings, score, split, tune_report_split

METHODS = {  # table row -> api query parameters
    "popularity": {"strategy": "popular"},
    "spike's method (mean of liked description vectors)": {"strategy": "spike"},
    "content, multi-interest": {"strategy": "content"},
    "collaborative alone": {"strategy": "collaborative"},
    "hybrid (default)": {"strategy": "hybrid"},
    "hybrid, diversity 0.3 (MMR)": {"strategy": "hybrid", "diversity": "0.3"},
}
DEFAULT, COMPONENTS = "hybrid (default)", ("popularity", "content, multi-interest", "collaborative alone")
# The hybrid's weights searched by --grid on the tuned users: one or two knobs at a time around the
# defaults (services.api.hybrid.Tuning).
GRID = [
    "content:0", "content:0.6", "content:1",
    "popularity:0", "popularity:0.1", "popularity:0.3",
    "next:0.2", "next:0.4", "next:0.8",
    "next:0.4,popularity:0.1", "next:0.8,popularity:0",
]
MIN_COVERAGE = 0.05  # the default's coverage target; tuning prefers weights that reach it


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movies", type=Path, required=True)
    parser.add_argument("--ratings", type=Path, nargs="+", required=True)
    parser.add_argument("--eval-users", type=Path, help="user ids to evaluate, one per line; default all")
    parser.add_argument("--tenant", default="eval-movielens")
    parser.add_argument("--out", type=Path, default=Path("EVAL.md"))
    parser.add_argument("--run-dir", type=Path, default=Path(os.environ.get("RUN_DIR", ".run")) / "eval")
    parser.add_argument("--embed-timeout-s", type=float, default=3600)
    parser.add_argument("--grid", action="store_true", help="also evaluate the hybrid's weight grid")
    return parser.parse_args()


def train(env: dict, tenant: str) -> tuple[float, float]:
    """Run the trainer job once for the tenant; (seconds, peak resident MiB of that process)."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "services.trainer", "--once", "--tenant", tenant],
                             env={**os.environ, **env})
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("the trainer failed")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


async def rank_all(session: aiohttp.ClientSession, api_url: str, users: list[EvalUser],
                   query: dict) -> tuple[dict[str, list[str]], list[float]]:
    recommended, latencies_ms = {}, []
    for user in users:
        params = {"limit": "10", **query}
        started = time.perf_counter()
        async with session.get(f"{api_url}/v1/users/{user.user_id}/recommendations", params=params) as response:
            body = await response.json()
            if response.status != 200:
                raise RuntimeError(f"recommendations for {user.user_id} ({query}): {response.status} {body}")
        latencies_ms.append((time.perf_counter() - started) * 1000)
        recommended[user.user_id] = [item["product"]["id"] for item in body["items"]]
    return recommended, latencies_ms


async def evaluate(args: argparse.Namespace) -> None:
    settings = Settings()
    movies = loader.read_movies(args.movies)
    catalogue = {m["id"] for m in movies}
    eval_ids = set(args.eval_users.read_text().split()) if args.eval_users else None
    training, users = split(read_ratings(args.ratings), eval_ids, catalogue)
    tune_users, report_users = tune_report_split(users)
    print(f"{len(movies)} products, {len(training)} training ratings, {len(users)} users evaluated:"
          f" {len(tune_users)} to tune on, {len(report_users)} reported on")

    # Its own processes: no rate limit worth the name, so latencies are the ranking's.
    env = {"LOG_JSON": "true", "RATE_LIMIT_PER_S": "1000000", "RATE_LIMIT_BURST": "1000000"}
    pool = await create_pool(settings)
    await loader.reset_tenant(pool, args.tenant)
    async with pool.acquire() as conn:
        _, key = await create_key(conn, args.tenant, "write", "make eval")
    ingest_port, api_port = free_port(), free_port()
    started = [
        procs.spawn(args.run_dir, "eval-ingest", "services.ingest", ingest_port, {**env, "PORT": str(ingest_port)}),
        procs.spawn(args.run_dir, "eval-api", "services.api", api_port, {**env, "PORT": str(api_port)}),
    ]
    n, rare = len(catalogue), rare_products(training, catalogue)
    try:
        procs.wait_ready(started, timeout_s=60)
        ingest_url, api_url = f"http://127.0.0.1:{ingest_port}", f"http://127.0.0.1:{api_port}"
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(timeout=timeout, headers={"Authorization": f"Bearer {key}"}) as session:
            t0 = time.perf_counter()
            await loader.load_catalogue(session, ingest_url, movies)
            await loader.wait_embedded(pool, args.tenant, settings.model_name, sorted(catalogue), args.embed_timeout_s)
            catalogue_s = time.perf_counter() - t0
            await loader.load_ratings(session, ingest_url, training)
            train_s, train_mib = train(env, args.tenant)

            async def row(name: str, query: dict, on: list[EvalUser]) -> report.Row:
                recommended, latencies = await rank_all(session, api_url, on, query)
                result = report.Row(name, score(recommended, on, n, rare=rare), latencies)
                print(report.format_row(result))
                return result

            rows = [await row(name, query, report_users) for name, query in METHODS.items()]
            grid_rows, tuned = [], []
            if args.grid:
                grid_rows = [await row("hybrid, defaults", METHODS[DEFAULT], tune_users)]
                grid_rows += [await row(f"hybrid, {w}", {"strategy": "hybrid", "weights": w}, tune_users) for w in GRID]
                covering = [r for r in grid_rows if r.scores.coverage >= MIN_COVERAGE]
                best = max(covering or grid_rows, key=lambda r: r.scores.ndcg)
                rule = (f"Tuning rule: the best NDCG on the tuned users among the weights whose coverage there is at"
                        f" least {MIN_COVERAGE} (all weights when none is).")
                if best is grid_rows[0]:
                    tuned = [rule, "", "On the tuned users no change beats the defaults.", ""]
                else:
                    weights = best.method.removeprefix("hybrid, ")
                    check = await row(f"hybrid, {weights} (best on the tuned users)",
                                      {"strategy": "hybrid", "weights": weights}, report_users)
                    rows.append(check)
                    default_row = rows[list(METHODS).index(DEFAULT)]
                    tuned = [rule, "", f"Chosen on the tuned users: {weights}; on the reported users it scores NDCG"
                             f" {check.scores.ndcg:.4f} (coverage {check.scores.coverage:.3f}) against the current"
                             f" default's {default_row.scores.ndcg:.4f} (coverage {default_row.scores.coverage:.3f}).", ""]
    finally:
        for record in started:
            procs.stop(args.run_dir, record, timeout_s=10)
        async with pool.acquire() as conn:
            await revoke_key(conn, key_id_of(key))
        await pool.close()
    by_name = {r.method: r for r in rows}
    text = report.render(
        rows, grid_rows, tuned,
        comparison_lines=report.comparison(by_name[DEFAULT], [by_name[c] for c in COMPONENTS]),
        history_lines=report.by_history([by_name[m] for m in (*COMPONENTS, DEFAULT)], report_users),
        catalogue_s=catalogue_s, train_s=train_s, train_mib=train_mib, n_items=n, n_ratings=len(training),
        n_tune=len(tune_users), n_report=len(report_users))
    print(text)
    args.out.write_text(text)


def main() -> None:
    asyncio.run(evaluate(parse_args()))


if __name__ == "__main__":
    main()
