import math

import numpy as np
import pytest

from tools.eval.protocol import EvalUser, Rating, bootstrap_interval, rare_products, score, split, tune_report_split


def ratings_of(user: str, values: list[float]) -> list[Rating]:
    return [Rating(user, f"m{i}", value, 1000 + i) for i, value in enumerate(values)]


def test_the_last_fifth_is_the_test_window_and_only_history_trains():
    ratings = ratings_of("u1", [5, 4, 3, 2, 1, 5, 4, 3, 4.5, 2])  # test window: m8 (4.5), m9 (2)
    training, users = split(ratings, None, {f"m{i}" for i in range(10)})
    assert [u.targets for u in users] == [{"m8"}]
    assert [r.item_id for r in users[0].history] == [f"m{i}" for i in range(8)]
    assert {r.item_id for r in training} == {f"m{i}" for i in range(8)}


def test_users_not_evaluated_train_with_everything_and_users_without_targets_are_skipped():
    ratings = ratings_of("train", [5, 5, 5]) + ratings_of("low", [5, 5, 1]) + ratings_of("eval", [3, 3, 3, 3, 5])
    training, users = split(ratings, {"low", "eval"}, {f"m{i}" for i in range(5)})
    assert [u.user_id for u in users] == ["eval"]
    assert sum(r.user_id == "train" for r in training) == 3


def test_at_least_one_rating_is_held_out():
    _, users = split(ratings_of("u", [4, 4]), None, {"m0", "m1"})
    assert [r.item_id for r in users[0].history] == ["m0"] and users[0].targets == {"m1"}


def test_metrics_follow_the_definitions():
    users = [EvalUser("a", [], {"x", "y"}), EvalUser("b", [], {"z"})]
    result = score({"a": ["q", "x", "y"], "b": ["w"]}, users, catalogue_size=10, k=10)
    ndcg_a = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert result.ndcg == pytest.approx(ndcg_a / 2)
    assert result.hit_rate == 0.5 and result.recall == pytest.approx(0.5)
    assert result.coverage == pytest.approx(0.4)


def test_the_tune_report_split_is_fixed_and_disjoint():
    users = [EvalUser(str(i), [], {"x"}) for i in range(400)]
    tune, reported = tune_report_split(users)
    again = tune_report_split(list(reversed(users)))
    assert {u.user_id for u in tune} == {u.user_id for u in again[0]}
    assert not {u.user_id for u in tune} & {u.user_id for u in reported} and len(tune) + len(reported) == 400
    assert 150 < len(tune) < 250


def test_the_ndcg_interval_brackets_the_mean_and_narrows_with_more_users():
    users = [EvalUser(str(i), [], {"x"}) for i in range(400)]
    recommended = {str(i): ["x"] if i % 4 == 0 else ["y"] for i in range(400)}
    few, many = score(recommended, users[:40], 10), score(recommended, users, 10)
    assert few.ndcg_interval[0] < few.ndcg < few.ndcg_interval[1]
    assert many.ndcg_interval[1] - many.ndcg_interval[0] < few.ndcg_interval[1] - few.ndcg_interval[0]
    assert bootstrap_interval(np.zeros(10)) == (0.0, 0.0)


def test_rare_share_counts_recommendations_of_rarely_rated_products():
    training = [Rating("t", "hit", 5, i) for i in range(6)] + [Rating("t", "niche", 5, 0)]
    rare = rare_products(training, {"hit", "niche", "new"})
    assert rare == {"niche", "new"}
    result = score({"a": ["hit", "niche", "new", "hit"]}, [EvalUser("a", [], {"hit"})], 10, rare=rare)
    assert result.rare_share == 0.5
