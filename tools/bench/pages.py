"""The pages a commit serves for the gateway bench's users, rendered to JSON: run it at two commits
against the same bench database and compare the files to check that a change to the request path
leaves every page as it was.

    python -m tools.bench.pages --database-url postgresql://.../postgres --products 100000 --out pages.json

The server is the one given to `make bench PART=gateway BENCH_ARGS="--database-url ..."`, which
loaded `recommender_bench_<products>` there. The other commit runs from a `git worktree` of it
(`cd that-tree && python -m tools.bench.pages ...`). Pages: the default request of `--users` bench
users, then for `--variant-users` of them each variant (a genre, a year range, MMR, every strategy,
two tunings, page 2, an exclusion), and a user without history.
"""
import argparse
import asyncio
import json
import os
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the api runs (set before numpy is imported)

import asyncpg  # noqa: E402
import numpy as np  # noqa: E402

from services.api.hybrid import Tuning  # noqa: E402
from services.api.neighbours import CollaborativeModels  # noqa: E402
from services.api.rec_views import render  # noqa: E402
from services.api.recommend import Request, ranked_depth, recommend  # noqa: E402
from services.api.store import Filters, Store  # noqa: E402
from shared.settings import ApiSettings  # noqa: E402
from tools.bench.gateway import _pool, database_url  # noqa: E402
from tools.bench.gateway_data import DIM, MODEL, TENANT  # noqa: E402


def variants(genre: str) -> dict[str, dict]:
    return {"genre": {"filters": Filters(genre=genre)}, "years": {"filters": Filters(year_from=1990, year_to=2000)},
            "mmr": {"diversity": 0.3}, "collaborative": {"strategy": "collaborative"},
            "content": {"strategy": "content"}, "spike": {"strategy": "spike"}, "popular": {"strategy": "popular"},
            "no-collaborative": {"tuning": Tuning.parse("collaborative:0")},
            "no-popularity": {"tuning": Tuning.parse("popularity:0")}, "page-2": {"offset": 10},
            "exclude": {"filters": Filters(exclude=("p0000001", "p0000002"))}}


async def pages(url: str, users: int, variant_users: int, limit: int, ef_search: int) -> dict[str, list]:
    conn = await asyncpg.connect(url)
    try:
        ids = [row["user_id"] for row in await conn.fetch(
            "SELECT DISTINCT user_id FROM interactions WHERE tenant_id = $1 ORDER BY user_id", TENANT)]
        genre = await conn.fetchval("SELECT genres[1] FROM products WHERE tenant_id = $1 ORDER BY id LIMIT 1", TENANT)
    finally:
        await conn.close()
    if not ids:
        raise SystemExit(f"no bench data in {url}: run make bench PART=gateway with --database-url first")
    np.random.default_rng(42).shuffle(ids)
    asked = [("default", user, {}) for user in ids[:users] + ["nobody"]]
    asked += [(name, user, change) for name, change in variants(genre).items() for user in ids[:variant_users]]
    pool, models, served = await _pool(url, ef_search, 1), CollaborativeModels(1), {}
    try:
        async with pool.acquire() as conn:
            for name, user, change in asked:
                request = Request(**{"tenant_id": TENANT, "model": MODEL, "strategy": "hybrid", "filters": Filters(),
                                     "limit": limit, "offset": 0, "depth": ranked_depth(limit), "dimension": DIM,
                                     **change})
                page = await recommend(Store(conn, models), request, user)
                served[f"{name}/{user}"] = {"items": render(page), "more": page.more}
    finally:
        await pool.close()
    return served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="the server holding the bench's databases")
    parser.add_argument("--products", type=int, default=100_000, help="which bench database: its catalogue size")
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--variant-users", type=int, default=25)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--ef-search", type=int, default=ApiSettings.model_fields["ef_search"].default)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    url = database_url(args.database_url, f"recommender_bench_{args.products}")
    served = asyncio.run(pages(url, args.users, args.variant_users, args.limit, args.ef_search))
    args.out.write_text(json.dumps(served, sort_keys=True, default=str, indent=1) + "\n")
    print(f"wrote {len(served)} pages to {args.out}")


if __name__ == "__main__":
    main()
