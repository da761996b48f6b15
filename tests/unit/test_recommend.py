"""The request path without a database: round trips, exclusions, filters, paging, strategies."""
import asyncio
from datetime import timedelta

import numpy as np
import pytest

from services.api.hybrid import Tuning
from services.api.recommend import Request, overlapped, plan, recommend
from services.api.store import Filters
from shared.interactions import History, Interaction
from tests.unit.fake_store import T, FakeStore

AXES = np.eye(4, dtype=np.float32)


def catalogue() -> FakeStore:
    """w* westerns (axis 0), s* space films (axis 1), p* popular romances (axis 2)."""
    rng = np.random.default_rng(0)
    vectors, genres = {}, {}
    for prefix, axis, genre in (("w", 0, "Western"), ("s", 1, "Space"), ("p", 2, "Romance")):
        for i in range(12):
            vectors[f"{prefix}{i:02d}"] = AXES[axis] + 0.15 * rng.standard_normal(4).astype(np.float32)
            genres[f"{prefix}{i:02d}"] = [genre]
    histories = {"wyatt": [Interaction(f"w{i:02d}", "like", None, T + timedelta(days=i)) for i in range(3)]}
    similar = {"w00": [("s05", 0.9), ("w07", 0.2)], "w01": [("s05", 0.5), ("s06", 0.4)]}
    popularity = {f"p{i:02d}": 1 - i / 20 for i in range(12)}
    return FakeStore(vectors, genres, histories, similar, {"w02": [("s07", 1.0)]}, popularity)


def request(strategy="hybrid", limit=5, offset=0, depth=40, filters=Filters(), **kwargs) -> Request:
    return Request("t", "m", strategy, filters, limit, offset, depth, **kwargs)


def ids(page) -> list[str]:
    return [candidate.product_id for candidate, _ in page.items]


async def test_a_personal_hybrid_page_takes_four_round_trips_and_leaves_the_history_out():
    store = catalogue()
    page = await recommend(store, request(limit=10), "wyatt")
    assert store.calls == ["history", "collaborative", "vectors", "candidates", "page"]  # 4 round trips; the model is in memory
    assert len(page.items) == 10 and not {"w00", "w01", "w02"} & set(ids(page))
    assert ids(page)[0] == "s05"  # both liked westerns' fans liked it
    first, _ = page.items[0]
    assert (first.source, first.because) == ("similar", "w00") and "w00" in page.reasons


async def test_content_reasons_name_the_liked_product_and_westerns_come_first():
    page = await recommend(catalogue(), request("content"), "wyatt")
    assert all(pid.startswith("w") for pid in ids(page))
    assert {c.source for c, _ in page.items} == {"content"} and {c.because for c, _ in page.items} <= {"w00", "w01", "w02"}


async def test_a_user_without_history_gets_popular_products():
    store = catalogue()
    page = await recommend(store, request(limit=3), "nobody")
    assert ids(page) == ["p00", "p01", "p02"] and {c.source for c, _ in page.items} == {"popular"}
    store.calls.clear()
    alone = await recommend(store, request(limit=3, tuning=Tuning.parse("popularity:0")), "nobody")
    assert ids(alone) == ids(page) and "candidates" not in store.calls  # nothing to blend: the continuation


async def test_a_product_deleted_since_training_is_dropped_and_the_page_still_fills():
    store = catalogue()
    store.deleted = {"s05", "p00"}  # the model still holds them: the page finds no row and asks again
    page = await recommend(store, request(limit=10), "wyatt")
    assert len(page.items) == 10 and not {"s05", "p00"} & set(ids(page))
    assert store.calls == ["history", "collaborative", "vectors", "candidates", "page", "page"]
    second = await recommend(store, request(limit=10, offset=10), "wyatt")
    assert not set(ids(page)) & set(ids(second)) and not {"s05", "p00"} & set(ids(second))


async def test_the_popular_strategy_is_the_continuation_alone():
    store = catalogue()
    page = await recommend(store, request("popular", limit=3), "wyatt")
    assert ids(page) == ["p00", "p01", "p02"] and "candidates" not in store.calls


async def test_filters_and_exclude_hold_for_every_source():
    page = await recommend(catalogue(), request(limit=8, filters=Filters(genre="Space", exclude=("s05",))), "wyatt")
    assert len(page.items) == 8 and all(pid.startswith("s") for pid in ids(page)) and "s05" not in ids(page)


async def test_pages_continue_past_the_ranked_part_without_repeats_and_end():
    store, seen, offset = catalogue(), [], 0
    while True:
        page = await recommend(store, request("content", limit=7, offset=offset, depth=10), "wyatt")
        seen += ids(page)
        offset += 7
        if not page.more:
            break
    assert len(seen) == len(set(seen)) == 36 - 3


async def test_a_session_dislike_pushes_its_neighbours_down():
    liked = History.of([Interaction("s00", "like", None, T)])
    both = History.of([Interaction("s00", "like", None, T), Interaction("w00", "dislike", None, T)])
    before = await recommend(catalogue(), request("content", limit=30), None, liked)
    after = await recommend(catalogue(), request("content", limit=30), None, both)
    westerns = lambda page: [i for i, pid in enumerate(ids(page)) if pid.startswith("w")]  # noqa: E731
    assert np.mean(westerns(after)) > np.mean(westerns(before))


@pytest.mark.parametrize("strategy", ["hybrid", "collaborative", "content", "spike", "popular"])
async def test_each_strategy_fills_the_page(strategy):
    page = await recommend(catalogue(), request(strategy, limit=12), "wyatt")
    assert len(page.items) == 12 and page.more


async def test_diversity_reorders_with_the_vectors_of_the_nearest_query():
    store = catalogue()
    plain = await recommend(store, request(limit=10), "wyatt")
    diverse = await recommend(store, request(limit=10, diversity=0.9), "wyatt")
    assert set(ids(plain)) != set(ids(diverse)) or ids(plain) != ids(diverse)
    assert store.calls.count("candidates") == 2


async def test_weights_change_the_blend():
    content_only = await recommend(catalogue(), request(limit=5, tuning=Tuning.parse("collaborative:0,popularity:0")),
                                   "wyatt")
    assert {c.source for c, _ in content_only.items} == {"content"}


def test_plan_takes_vectors_of_the_heaviest_and_neighbours_of_the_latest():
    history = History.of([Interaction("old", "like", None, T), Interaction("seen", "view", None, T + timedelta(days=1)),
                          Interaction("bad", "dislike", None, T + timedelta(days=2))])
    wanted = plan("hybrid", history.weights())
    assert wanted.vector_ids == ["old", "bad"] and wanted.similar_ids == ["bad", "seen", "old"]
    assert plan("content", history.weights()).similar_ids == [] and plan("popular", history.weights()).vector_ids == []


async def test_the_work_runs_while_the_statement_is_in_flight():
    events = []

    async def trip():
        events.append("sent")
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise
        events.append("answered")
        return "rows"

    assert await overlapped(trip(), lambda: events.append("work") or 42) == ("rows", 42)
    assert events == ["sent", "work", "answered"]
    events.clear()
    with pytest.raises(ZeroDivisionError):
        await overlapped(trip(), lambda: 1 / 0)
    assert events == ["sent", "cancelled"]  # ended before the error leaves (and the connection with it)
    assert await overlapped(None, lambda: 42, "nothing") == ("nothing", 42)


@pytest.mark.parametrize("filters", [Filters(), Filters(genre="Drama")])
async def test_popularity_counts_for_collaborative_candidates_with_and_without_a_filter(filters):
    """Two products the liked one's fans liked equally, neither among the nearest nor among the
    most popular (250 more popular products, closer in description): the hybrid ranks the more
    popular of the two first, each scoring its collaborative part (1) plus 0.05 x its popularity."""
    others = {f"f{i:03d}": AXES[0] + AXES[2] for i in range(250)}
    vectors = {"a": AXES[0], "x": AXES[1], "y": AXES[1], **others}
    store = FakeStore(vectors, {pid: ["Drama"] for pid in vectors},
                      {"u": [Interaction("a", "like", None, T)]}, {"a": [("x", 0.5), ("y", 0.5)]}, {},
                      {"x": 0.2, "y": 0.4, **{pid: 0.9 for pid in others}})
    page = await recommend(store, request(limit=2, filters=filters, tuning=Tuning.parse("content:0")), "u")
    assert ids(page) == ["y", "x"]
    assert [c.score for c, _ in page.items] == pytest.approx([1 + 0.05 * 0.4, 1 + 0.05 * 0.2], rel=1e-6)
