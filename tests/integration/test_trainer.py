"""The trainer job on the real PostgreSQL: binary COPY in, tables out, one snapshot."""
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from services.trainer import load
from services.trainer.job import train
from shared import neighbours
from shared.interactions import TYPES, training_weights

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


async def add_interactions(pool, tenant: str, rows: list[tuple[str, str, str, float | None, int]]) -> None:
    """rows: (user, product, type, value, minutes after T0)."""
    await pool.execute("INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING", tenant)
    await pool.executemany("INSERT INTO users (tenant_id, id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                           [(tenant, user) for user in {r[0] for r in rows}])
    await pool.executemany(
        "INSERT INTO interactions (tenant_id, user_id, product_id, type, value, occurred_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [(tenant, user, product, kind, value, T0 + timedelta(minutes=m)) for user, product, kind, value, m in rows])


async def test_interactions_arrive_as_arrays_sorted_by_user_then_time(pool, unique):
    tenant = f"train-{unique}"
    await add_interactions(pool, tenant, [
        ("bob", "p2", "like", None, 5), ("amy", "p1", "rating", 4.5, 3), ("amy", "p3", "view", None, 1),
        ("bob", "p1", "dislike", None, 1), ("amy", "p2", "rating", 3.0, 2), ("cat", "p3", "purchase", 2.0, 9)])
    async with pool.acquire() as conn:
        data = await load.load_interactions(conn, tenant)
    assert data.product_ids == ["p1", "p2", "p3"] and data.users == 3 and len(data) == 6
    names = [data.product_ids[code] for code in data.product]
    assert names == ["p3", "p2", "p1", "p1", "p2", "p3"]  # amy by time, then bob, then cat
    assert data.user.tolist() == [0, 0, 0, 1, 1, 2]
    assert data.weight.tolist() == [0.0, 0.0, 1.0, 0.0, 1.0, 1.0]  # view, 3 stars, 4.5 stars, dislike, like, purchase
    assert data.time_s[0] == (T0 + timedelta(minutes=1)).timestamp()
    assert data.last_id == await pool.fetchval("SELECT max(id) FROM interactions WHERE tenant_id = $1", tenant)


async def test_the_copy_stream_parses_whatever_the_chunk_boundaries(pool):
    chunks = []

    async def keep(chunk: bytes) -> None:
        chunks.append(chunk)

    await pool.copy_from_query("SELECT n::int4, (n * 7)::int4, (n % 5)::int2, CASE WHEN n % 3 = 0 THEN 'NaN'"
                               " ELSE n / 2.0 END::float4, n * 1000.5::float8, (n * 10)::int8 FROM generate_series(1, 500) AS n",
                               output=keep, format="binary")
    stream = b"".join(chunks)
    reader = load._RowReader(500)
    for start in range(0, len(stream), 7):  # 7-byte pieces cut through every field and the header
        await reader.feed(stream[start:start + 7])
    n = np.arange(1, 501)
    assert reader.filled == 500
    assert reader.columns["user"].tolist() == n.tolist() and reader.columns["product"].tolist() == (n * 7).tolist()
    assert reader.columns["type"].tolist() == (n % 5).tolist()
    np.testing.assert_array_equal(reader.columns["value"], np.where(n % 3 == 0, np.nan, n / 2).astype(np.float32))
    np.testing.assert_array_equal(reader.columns["time"], n * 1000.5)
    assert reader.columns["id"].tolist() == (n * 10).tolist()


def test_weights_by_type_code_follow_the_one_rule_per_interaction():
    types = np.array([code for code in range(len(TYPES)) for _ in range(4)], dtype=np.int8)
    values = np.array([np.nan, 1.0, 3.0, 4.5] * len(TYPES), dtype=np.float32)
    expected = training_weights(types, values)
    assert expected.tolist() == [1.0] * 8 + [0.0] * 8 + [0.0, 0.0, 0.0, 1.0]  # purchase, like; dislike, view; 4.5 stars
    assert load.weights_of(types, values).tolist() == expected.tolist()
    assert set(expected.tolist()) == {0.0, 1.0}


async def test_training_stores_neighbours_popularity_and_the_run(pool, unique):
    tenant = f"tables-{unique}"
    rows = []
    for n in range(6):  # westerns and cartoons go together; then people watch the romance next
        rows += [(f"fan{n}", "western", "like", None, 1), (f"fan{n}", "cartoon", "like", None, 2),
                 (f"fan{n}", "romance", "view", None, 3)]
    rows += [("other", "drama", "like", None, 1), ("other", "thriller", "like", None, 2)]
    await add_interactions(pool, tenant, rows)
    report = await train(pool, tenant)
    assert report.interactions == len(rows) and report.products == 4
    async with pool.acquire() as conn:
        model = await neighbours.load(conn, tenant)
    similar = [pid for pid, _ in model.neighbours("similar", "western")]
    assert similar[0] == "cartoon" and "romance" not in similar
    assert [pid for pid, _ in model.neighbours("next", "cartoon")] == ["romance"]
    popularity = dict(await pool.fetch("SELECT product_id, score FROM product_popularity WHERE tenant_id = $1",
                                       tenant))
    assert popularity["western"] == pytest.approx(1.0) and "romance" not in popularity and 0 < popularity["drama"] < 1
    runs = await pool.fetch("SELECT interactions, last_interaction_id FROM training_runs WHERE tenant_id = $1",
                            tenant)
    assert [tuple(r) for r in runs] == [(len(rows), report.last_interaction_id)]
    second = await train(pool, tenant)  # a second run replaces the model, never adds to it
    async with pool.acquire() as conn:
        replaced = await neighbours.load(conn, tenant)
    assert replaced.run_id > model.run_id and replaced.neighbours("similar", "western") == model.neighbours("similar", "western")
    assert second.interactions == len(rows)
    assert await pool.fetchval("SELECT count(*) FROM collaborative_models WHERE tenant_id = $1", tenant) == 1
