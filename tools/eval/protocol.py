"""The offline evaluation protocol (see the data folder's README), as pure functions.

Per evaluated user, ratings sorted by time: the last 20 % (at least one) are the test window, the
rest the history. Targets are test-window items rated >= 4.0; users without a target are skipped.
Ranking is over the whole catalogue with every history item excluded. History ratings reach the
service as ratings; what they say about taste is `shared.interactions`' rule, the same as in production.
"""
import csv
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from shared.interactions import LIKE_MIN_STARS

TEST_SHARE = 0.2
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


@dataclass
class Scores:
    ndcg: float = 0.0
    hit_rate: float = 0.0
    recall: float = 0.0
    coverage: float = 0.0
    users: int = 0


def score(recommended: dict[str, list[str]], users: list[EvalUser], catalogue_size: int, k: int = 10) -> Scores:
    """HR@k, NDCG@k (binary gain), Recall@k (hits / min(k, |targets|)) and catalogue coverage."""
    total = Scores(users=len(users))
    seen: set[str] = set()
    for user in users:
        top = recommended.get(user.user_id, [])[:k]
        seen.update(top)
        hits = [item in user.targets for item in top]
        ideal = min(k, len(user.targets))
        dcg = sum(1 / math.log2(rank + 2) for rank, hit in enumerate(hits) if hit)
        total.ndcg += dcg / sum(1 / math.log2(rank + 2) for rank in range(ideal))
        total.hit_rate += any(hits)
        total.recall += sum(hits) / ideal
    n = max(1, len(users))
    total.ndcg, total.hit_rate, total.recall = total.ndcg / n, total.hit_rate / n, total.recall / n
    total.coverage = len(seen) / catalogue_size
    return total
