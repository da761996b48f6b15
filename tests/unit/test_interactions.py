"""The one meaning of an interaction: preferences, the latest event per product, recency relative
to the user's own newest event, popularity."""
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from services.api.recommend import Request, recommend
from services.api.scoring import find_interests, interest_shares
from services.api.store import Filters
from shared.interactions import (TYPES, History, Interaction, effective_type, popularity, preferences, training_weights,
                                 type_codes)
from tests.unit.fake_store import FakeStore

T0 = datetime(1995, 3, 1, tzinfo=timezone.utc)  # decades before any test runs


def events(*rows: tuple) -> History:
    return History.of([Interaction(pid, kind, stars, T0 + timedelta(days=day)) for pid, kind, stars, day in rows])


def shifted(history: History, days: float) -> History:
    return History(history.product_ids, history.types, history.stars, history.times_s + days * 86_400)


def test_likes_and_purchases_pull_dislikes_push_views_are_neutral_ratings_read_by_stars():
    kinds = type_codes(["like", "purchase", "dislike", "view", "rating", "rating", "rating", "rating"])
    stars = np.array([np.nan] * 4 + [4.5, 4.0, 3.0, 2.0])
    got = preferences(kinds, stars)
    assert got[0] == got[1] == got[4] == got[5] > 0 and got[2] == got[7] < 0 and got[3] == got[6] == 0
    assert list(training_weights(kinds, stars) > 0) == [True, True, False, False, True, True, False, False]
    assert [effective_type("rating", s) for s in (5.0, 3.5, 0.5)] == ["like", "view", "dislike"]


def test_the_latest_event_per_product_decides_and_the_newest_product_comes_first():
    weights = events(("a", "like", None, 0), ("b", "like", None, 1), ("a", "dislike", None, 2),
                     ("c", "view", None, 3)).weights()
    assert weights.product_ids == ["c", "a", "b"]
    as_dict = weights.as_dict()
    assert as_dict["a"] < 0 < as_dict["b"] and as_dict["c"] == 0


def test_weights_decay_from_the_users_own_newest_event_not_from_the_clock():
    history = events(("old", "like", None, 0), ("new", "like", None, 365))
    weights = history.weights(half_life_days=365).as_dict()
    assert weights["new"] == 1.0 and weights["old"] == pytest.approx(0.5)
    assert shifted(history, 3650).weights(365).as_dict() == weights


def _store(history: History) -> FakeStore:
    """Westerns along one axis, cartoons along another, a collaborative table for both."""
    rng = np.random.default_rng(0)
    axes = np.eye(8, dtype=np.float32)
    vectors = {f"w{i}": axes[0] + 0.1 * rng.standard_normal(8) for i in range(30)}
    vectors |= {f"c{i}": axes[1] + 0.1 * rng.standard_normal(8) for i in range(30)}
    similar = {"w0": [("w20", 0.5), ("c20", 0.1)], "c0": [("c21", 0.9)]}
    store = FakeStore(vectors, similar=similar, following={"w3": [("w22", 1.0)]},
                      popularity={f"c{i}": 0.5 for i in range(10, 15)})
    store.histories["u"] = [Interaction(str(pid), TYPES[kind], None, datetime.fromtimestamp(t, timezone.utc))
                            for pid, kind, t in zip(history.product_ids, history.types, history.times_s)]
    return store


async def _ranking(history: History) -> list[tuple[str, str, str | None]]:
    page = await recommend(_store(history), Request("t", "m", "hybrid", Filters(), 20, 0, 40), "u")
    return [(c.product_id, c.source, c.because) for c, _ in page.items]


async def test_a_ranking_does_not_change_when_the_clock_moves_forward_a_year_without_new_events():
    """Four westerns liked recently, two cartoons long ago (the newest event years before today).
    A year later, with nothing new, the same ranking; and the interests keep unequal shares (a
    clock-based decay floored every weight and made them all equal)."""
    history = events(*[(f"w{i}", "like", None, 2000 + i) for i in range(4)],
                     *[(f"c{i}", "like", None, i) for i in range(2)])
    a_year_later = shifted(history, -365)  # every event a year older as seen from the clock
    ranking = await _ranking(history)
    assert await _ranking(a_year_later) == ranking
    top = [pid for pid, source, _ in ranking[:10]]
    assert sum(pid.startswith("w") for pid in top) > sum(pid.startswith("c") for pid in top)
    weights = history.weights().as_dict()
    vectors = {pid: np.eye(8, dtype=np.float32)[0 if pid.startswith("w") else 1] for pid in weights}
    shares = interest_shares(find_interests(vectors, weights), vectors, weights)
    assert shares[0] > 1.5 * shares[1]


def test_popularity_counts_positive_evidence_decayed_from_the_newest_event_log_scaled():
    day = 86_400.0
    ids = np.array(["hit", "hit", "hit", "old", "old", "old", "meh", "hated"], dtype=object)
    weights = training_weights(type_codes(["like", "purchase", "like", "like", "like", "like", "view", "dislike"]),
                               np.full(8, np.nan))
    times = np.array([1000, 1000, 1000, 0, 0, 0, 1000, 1000]) * day
    scores = popularity(ids, weights, times, half_life_days=365)
    assert set(scores) == {"hit", "old"} and scores["hit"] == 1.0 > scores["old"] > 0
    assert popularity(ids, weights, times + 5 * 365 * day, half_life_days=365) == scores
