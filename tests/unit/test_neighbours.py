"""The collaborative model as stored and applied: packed tables, row lookup, and the api's
per-process copy that is loaded once per training run."""
import asyncio

import numpy as np
import pytest

from services.api.neighbours import CollaborativeModels
from shared import neighbours
from shared.neighbours import SAVE, CollaborativeModel, NeighbourTable, Packed

PAIRS = {"similar": {"a": [("b", 0.9), ("c", 0.5)], "c": [("a", 0.4)]}, "next": {"b": [("c", 1.0)]}}


def test_rows_flatten_the_asked_products_rows_and_skip_products_without_one():
    model = CollaborativeModel.of_pairs(1, PAIRS)
    rows = model.rows("similar", ["c", "unknown", "b", "a"])  # b has no similar row
    assert rows.row_ids == ["c", "a"]
    pairs = [(rows.row_ids[r], model.product_ids[n], float(w)) for r, n, w in zip(rows.row, rows.neighbour, rows.weight)]
    assert pairs == [("c", "a", pytest.approx(0.4)), ("a", "b", pytest.approx(0.9)), ("a", "c", 0.5)]
    assert model.neighbours("next", "b") == [("c", 1.0)] and model.neighbours("next", "a") == []
    assert len(model.rows("next", []).row) == 0
    no_next = CollaborativeModel.of_pairs(1, {"similar": PAIRS["similar"]})  # a table without a filled row
    assert no_next.rows("next", ["a", "unknown"]).row_ids == [] and len(no_next.rows("next", ["a"]).neighbour) == 0


def test_packing_keeps_filled_rows_only_cut_to_the_width():
    table = NeighbourTable.empty(4, 3)
    table.index[1], table.weight[1] = [2, 0, -1], [0.8, 0.3, 0.0]
    table.index[3, 0], table.weight[3, 0] = 1, 0.5
    packed = Packed.of(table, width=2)
    assert packed.rows.tolist() == [1, 3] and packed.neighbours.tolist() == [[2, 0], [1, -1]]
    assert packed.weights.tolist() == [[np.float32(0.8), np.float32(0.3)], [0.5, 0.0]]


class FakeConn:
    """Keeps what `neighbours.save` writes and answers `neighbours.load` with it, counting loads."""

    def __init__(self):
        self.rows, self.loads = {}, 0

    async def execute(self, query, tenant_id, run_id, product_ids, width, *arrays):
        assert query == SAVE
        names = [f"{kind}_{part}" for kind in neighbours.KINDS for part in ("rows", "neighbours", "weights")]
        names.append("popularity")
        self.rows[tenant_id] = {"run_id": run_id, "product_ids": product_ids, "width": width, **dict(zip(names, arrays))}

    async def fetchrow(self, query, tenant_id):
        self.loads += 1
        await asyncio.sleep(0.01)  # a load takes a while: concurrent requests must share it
        return self.rows.get(tenant_id)


async def test_a_saved_model_loads_back_the_same():
    conn, model = FakeConn(), CollaborativeModel.of_pairs(7, PAIRS, {"b": 1.0, "c": 0.25, "d": 0.5})
    await neighbours.save(conn, "t", model)
    loaded = await neighbours.load(conn, "t")
    assert loaded.run_id == 7 and loaded.product_ids.tolist() == model.product_ids.tolist()
    for kind, table in PAIRS.items():
        for pid, pairs in table.items():
            assert [(n, round(w, 4)) for n, w in loaded.neighbours(kind, pid)] == pairs
    assert dict(zip(loaded.product_ids.tolist(), loaded.popularity.tolist())) == {"a": 0.0, "b": 1.0, "c": 0.25, "d": 0.5}
    assert await neighbours.load(conn, "never-trained") is None


def test_the_most_popular_skip_the_excluded_and_break_ties_by_id():
    model = CollaborativeModel.of_pairs(1, PAIRS, {"b": 1.0, "c": 0.5, "a": 0.5, "e": 0.0, "d": 0.75})
    assert model.product_ids[model.most_popular(3, set())].tolist() == ["b", "d", "a"]
    assert model.product_ids[model.most_popular(3, {"b", "a"})].tolist() == ["d", "c"]  # only two others score above 0


async def test_each_process_loads_a_tenants_model_once_per_training_run():
    conn, cache = FakeConn(), CollaborativeModels(max_tenants=1)
    assert await cache.get(conn, "t", None) is None and conn.loads == 0  # never trained: nothing to load
    await neighbours.save(conn, "t", CollaborativeModel.of_pairs(1, PAIRS))
    first = await asyncio.gather(*(cache.get(conn, "t", 1) for _ in range(5)))
    assert conn.loads == 1 and all(model is first[0] for model in first)  # one load, shared
    assert await cache.get(conn, "t", 1) is first[0] and conn.loads == 1
    await neighbours.save(conn, "t", CollaborativeModel.of_pairs(2, {"similar": {"a": [("c", 1.0)]}}))
    newer = await cache.get(conn, "t", 2)  # a new training run: the very next request uses it
    assert newer.run_id == 2 and newer.neighbours("similar", "a") == [("c", 1.0)] and conn.loads == 2
    await neighbours.save(conn, "u", CollaborativeModel.of_pairs(1, PAIRS))
    await cache.get(conn, "u", 1)
    await cache.get(conn, "t", 2)  # evicted by u (one tenant kept): loaded again
    assert conn.loads == 4
