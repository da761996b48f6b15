"""The offline evaluation protocol (see the data folder's README), as pure functions.

Per evaluated user, ratings sorted by time: the last 20 % (at least one) are the test window, the
rest the history. Targets are test-window items rated >= 4.0; users without a target are skipped.
Ranking is over the whole catalogue with every history item excluded. History ratings reach the
service as ratings; what they say about taste is `shared.interactions`' rule, the same as in production.
"""
import csv
import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared.interactions import LIKE_MIN_STARS

TEST_SHARE = 0.2
SPLIT_SEED = "recommender-eval-1"  # the fixed split of the evaluated users into tuned and reported
TUNE_SHARE = 0.5
BOOTSTRAP_SAMPLES = 2000
RARE_MAX_RATINGS = 5  # a product with at most this many training ratings counts as rare (or new)
HISTORY_BUCKETS = ((1, 19), (20, 49), (50, 149), (150, 10**9))  # history ratings, inclusive
TARGET_MIN_RATING = LIKE_MIN_STARS  # a target is a test-window movie the user liked


@dataclass(frozen=True)
class Rating:
    user_id: str
    item_id: str
    value: float
    timestamp_s: int


@dataclass
class EvalUser:
    user_id: str
    history: list[Rating]
    targets: set[str] = field(default_factory=set)


def read_ratings(paths: list[Path]) -> list[Rating]:
    ratings = []
    for path in paths:
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                ratings.append(Rating(row["userId"], row["movieId"], float(row["rating"]), int(row["timestamp"])))
    return ratings


def test_window_size(n_ratings: int) -> int:
    return max(1, round(TEST_SHARE * n_ratings))


def split(ratings: list[Rating], eval_user_ids: set[str] | None, catalogue: set[str]) -> tuple[list[Rating], list[EvalUser]]:
    """(training ratings, evaluated users). Training never sees an evaluated user's test window.

    `eval_user_ids` None evaluates every user. Ratings of items outside the catalogue are dropped.
    """
    by_user: dict[str, list[Rating]] = defaultdict(list)
    for rating in ratings:
        if rating.item_id in catalogue:
            by_user[rating.user_id].append(rating)
    training, users = [], []
    for user_id, own in by_user.items():
        if eval_user_ids is not None and user_id not in eval_user_ids:
            training += own
            continue
        own.sort(key=lambda r: r.timestamp_s)
        cut = len(own) - test_window_size(len(own))
        history, window = own[:cut], own[cut:]
        training += history
        targets = {r.item_id for r in window if r.value >= TARGET_MIN_RATING}
        if targets:
            users.append(EvalUser(user_id, history, targets))
    return training, users


def tune_report_split(users: list[EvalUser], seed: str = SPLIT_SEED,
                      tune_share: float = TUNE_SHARE) -> tuple[list[EvalUser], list[EvalUser]]:
    """(tuned on, reported on): a fixed split by a seeded hash of the user id, independent of order."""
    def draw(user: EvalUser) -> float:
        return int(hashlib.sha256(f"{seed}:{user.user_id}".encode()).hexdigest()[:8], 16) / 16**8

    return [u for u in users if draw(u) < tune_share], [u for u in users if draw(u) >= tune_share]


@dataclass
class UserScores:
    ndcg: np.ndarray
    hit: np.ndarray
    recall: np.ndarray


def per_user(recommended: dict[str, list[str]], users: list[EvalUser], k: int = 10) -> UserScores:
    """NDCG@k (binary gain), hit@k and recall@k (hits / min(k, |targets|)) of each user."""
    ndcg, hit, recall = [], [], []
    for user in users:
        hits = [item in user.targets for item in recommended.get(user.user_id, [])[:k]]
        ideal = min(k, len(user.targets))
        dcg = sum(1 / math.log2(rank + 2) for rank, h in enumerate(hits) if h)
        ndcg.append(dcg / sum(1 / math.log2(rank + 2) for rank in range(ideal)))
        hit.append(float(any(hits)))
        recall.append(sum(hits) / ideal)
    return UserScores(np.array(ndcg), np.array(hit), np.array(recall))


def bootstrap_interval(values: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float, float]:
    """95 % interval of the mean, resampling users with replacement (paired when given differences)."""
    if len(values) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (samples, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def history_bucket(user: EvalUser) -> str:
    n = len(user.history)
    for low, high in HISTORY_BUCKETS:
        if low <= n <= high:
            return f"{low}-{high}" if high < 10**9 else f"{low}+"
    return "0"


@dataclass
class Scores:
    ndcg: float = 0.0
    hit_rate: float = 0.0
    recall: float = 0.0
    coverage: float = 0.0
    users: int = 0
    ndcg_interval: tuple[float, float] = (0.0, 0.0)
    ndcg_per_user: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rare_share: float = 0.0


def score(recommended: dict[str, list[str]], users: list[EvalUser], catalogue_size: int, k: int = 10,
          rare: frozenset[str] = frozenset()) -> Scores:
    """HR@k, NDCG@k (binary gain), Recall@k (hits / min(k, |targets|)) averaged over users, the 95 %
    bootstrap interval of NDCG, catalogue coverage (distinct products recommended / catalogue) and
    the share of recommendations that are `rare` products (few or no training ratings)."""
    each = per_user(recommended, users, k)
    shown = [item for user in users for item in recommended.get(user.user_id, [])[:k]]
    mean = (lambda values: float(values.mean()) if len(values) else 0.0)  # noqa: E731
    return Scores(mean(each.ndcg), mean(each.hit), mean(each.recall), len(set(shown)) / catalogue_size, len(users),
                  bootstrap_interval(each.ndcg), each.ndcg,
                  sum(item in rare for item in shown) / len(shown) if shown else 0.0)


def rare_products(training: list[Rating], catalogue: set[str]) -> frozenset[str]:
    counts: dict[str, int] = defaultdict(int)
    for rating in training:
        counts[rating.item_id] += 1
    return frozenset(item for item in catalogue if counts[item] <= RARE_MAX_RATINGS)
