"""Content scoring, pure: interests, candidate scores with reasons, interleaving.

No I/O here; `recommend.py` feeds it the history's weights (`shared.interactions`) and vectors
from PostgreSQL. Candidates are `shared.ranking.Candidate`s with source CONTENT.
"""
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import linkage
from scipy.spatial.distance import squareform

from shared.ranking import CONTENT, Candidate

MAX_INTERESTS = 3  # each is one HNSW scan per request; five scored no better on `make eval` (EVAL.md)
MAX_CLUSTERED = 50  # the heaviest liked items are clustered; the rest join the nearest interest
JOIN_SIMILARITY = 0.3  # groups of liked items this alike on average form one interest
DISLIKE_PENALTY = 0.6


@dataclass
class Interest:
    members: list[str]
    weight: float
    centroid: np.ndarray


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its length (a zero row stays zero)."""
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


class Vectors(Mapping[str, np.ndarray]):
    """Vectors by product id, held as one float32 matrix whose unit rows are computed once (a
    request reads the units of its liked and disliked products several times)."""

    def __init__(self, product_ids: list[str], matrix: np.ndarray):
        self.row = {pid: i for i, pid in enumerate(product_ids)}
        self.matrix = matrix
        self._units: np.ndarray | None = None

    @classmethod
    def of(cls, vectors: Mapping[str, np.ndarray]) -> "Vectors":
        if isinstance(vectors, Vectors):
            return vectors
        ids = list(vectors)
        if not ids:
            return cls([], np.zeros((0, 0), dtype=np.float32))
        return cls(ids, np.array([vectors[pid] for pid in ids], dtype=np.float32))

    def __getitem__(self, product_id: str) -> np.ndarray:
        return self.matrix[self.row[product_id]]

    def __iter__(self) -> Iterator[str]:
        return iter(self.row)

    def __len__(self) -> int:
        return len(self.row)

    def __contains__(self, product_id: object) -> bool:
        return product_id in self.row

    def rows(self, ids: list[str]) -> np.ndarray:
        """The vectors of `ids` as one matrix, as they are."""
        return self.matrix[[self.row[pid] for pid in ids]]

    def units(self, ids: list[str], dimension: int = 0) -> np.ndarray:
        """The vectors of `ids` as one matrix of unit rows."""
        if not ids:
            return np.zeros((0, dimension or self.matrix.shape[1]), dtype=np.float32)
        if self._units is None:
            self._units = unit_rows(self.matrix)
        return self._units[[self.row[pid] for pid in ids]]


def find_interests(vectors: Mapping[str, np.ndarray], weights: dict[str, float],
                   max_interests: int = MAX_INTERESTS) -> list[Interest]:
    """Group the positively weighted items into at most `max_interests` interests, heaviest first:
    a user who likes westerns and cartoons gets two interests, not one blurred average.

    Average-linkage clustering on cosine similarity: the two closest groups merge while they are
    at least JOIN_SIMILARITY alike on average, or while there are too many groups."""
    vectors = Vectors.of(vectors)
    ranked = sorted((pid for pid in vectors if weights.get(pid, 0) > 0), key=lambda pid: (-weights[pid], pid))
    liked, rest = ranked[:MAX_CLUSTERED], ranked[MAX_CLUSTERED:]
    if not liked:
        return []
    units = vectors.units(liked)
    groups = _average_linkage(units, max_interests)
    interests = []
    for members in groups:
        member_weights = np.array([weights[liked[i]] for i in members], dtype=np.float32)
        centroid = _unit((units[members] * member_weights[:, None]).sum(axis=0))
        interests.append(Interest([liked[i] for i in members], float(member_weights.sum()), centroid))
    if rest:  # lighter items join the interest they are closest to (the first one on a tie)
        closest = (vectors.units(rest) @ np.stack([interest.centroid for interest in interests]).T).argmax(axis=1)
        for pid, index in zip(rest, closest.tolist()):
            interests[index].members.append(pid)
            interests[index].weight += weights[pid]
    interests.sort(key=lambda interest: (-interest.weight, interest.members[0]))
    return interests


def _average_linkage(units: np.ndarray, max_interests: int) -> list[list[int]]:
    """Groups of the rows of `units` (each ascending, by their first row): the two closest groups
    (average cosine similarity of their members, scipy's average linkage) merge while they are at
    least JOIN_SIMILARITY alike, or while there are more than `max_interests` groups."""
    count = len(units)
    if count == 1:
        return [[0]]
    wide = units.astype(np.float64)
    distance = np.clip(1.0 - wide @ wide.T, 0.0, 2.0)
    np.fill_diagonal(distance, 0.0)
    groups = {i: [i] for i in range(count)}
    merges = linkage(squareform(distance, checks=False), method="average").tolist()  # Python floats: cheaper to read
    for step, (a, b, apart, _) in enumerate(merges):
        if apart > 1 - JOIN_SIMILARITY and count - step <= max_interests:  # merges come closest first
            break
        groups[count + step] = groups.pop(int(a)) + groups.pop(int(b))
    return sorted(sorted(group) for group in groups.values())


def _disliked(vectors: Mapping[str, np.ndarray], weights: dict[str, float]) -> list[str]:
    """The disliked products among those with a vector (a few dozen, not the whole history), by id."""
    return sorted(pid for pid in vectors if weights.get(pid, 0.0) < 0)


def interest_shares(interests: list[Interest], vectors: Mapping[str, np.ndarray],
                    weights: dict[str, float]) -> list[float]:
    """The share of the list each interest gets: by the square root of its weight, so a small
    interest still shows up, less what dislikes close to it take away."""
    vectors = Vectors.of(vectors)
    disliked = _disliked(vectors, weights)
    centroids = np.stack([interest.centroid for interest in interests])
    strength = np.array([-weights[pid] for pid in disliked], dtype=np.float32)
    against = (np.maximum(vectors.units(disliked, centroids.shape[1]) @ centroids.T, 0.0) * strength[:, None]).sum(axis=0)
    masses = [math.sqrt(max(interest.weight - float(a), 0.05 * interest.weight, 1e-9))
              for interest, a in zip(interests, against)]
    total = sum(masses)
    return [mass / total for mass in masses]


@dataclass(frozen=True)
class ContentScores:
    """Content candidates scored: candidate i is `product_ids[i]`, its score, the liked product that
    contributed most (`liked[best[i]]`) and the interest that product belongs to (`group[i]`)."""

    product_ids: list[str]
    score: np.ndarray
    liked: list[str]
    best: np.ndarray
    group: np.ndarray


def score_content(candidate_ids: list[str], candidates: np.ndarray, vectors: Mapping[str, np.ndarray],
                  weights: dict[str, float], interests: list[Interest]) -> ContentScores:
    """Score each candidate by its best match among the liked items (weighted), minus a penalty
    for resembling a disliked one; that liked item is its reason and its interest the candidate's."""
    liked = [pid for interest in interests for pid in interest.members]
    if not candidate_ids:
        return ContentScores([], np.zeros(0), liked, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    vectors = Vectors.of(vectors)
    candidates = unit_rows(candidates)
    group_of = np.array([g for g, interest in enumerate(interests) for _ in interest.members])
    liked_weights = np.array([weights[pid] for pid in liked], dtype=np.float32)
    factors = 0.5 + 0.5 * liked_weights / liked_weights.max()
    contributions = (candidates @ vectors.units(liked).T) * factors
    best = contributions.argmax(axis=1)
    scores = contributions[np.arange(len(candidate_ids)), best]
    disliked = _disliked(vectors, weights)
    if disliked:
        strength = np.array([-weights[pid] for pid in disliked], dtype=np.float32)
        penalty = np.clip(candidates @ vectors.units(disliked).T, 0, None) * (strength / strength.max())
        scores = scores - DISLIKE_PENALTY * penalty.max(axis=1)
    return ContentScores(candidate_ids, scores, liked, best, group_of[best])


def interleave(scored: ContentScores, shares: list[float], depth: int) -> list[Candidate]:
    """The first `depth` of one list from per-interest rankings: each interest fills its share of
    every prefix of the list (item r of an interest with share s sits at (r + 1) / s); equal places
    by score, then by product id. Deterministic."""
    count = len(scored.product_ids)
    if not count:
        return []
    by_name = np.empty(count, dtype=np.int64)
    by_name[sorted(range(count), key=scored.product_ids.__getitem__)] = np.arange(count)
    within = np.lexsort((by_name, -scored.score, scored.group))  # each interest's own ranking, one after another
    group = scored.group[within]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    rank = np.arange(count) - np.repeat(starts, np.diff(np.r_[starts, count]))
    share_of = np.array(shares + [min(shares, default=1.0)])  # an interest without a share: the smallest
    place = np.empty(count)
    place[within] = (rank + 1) / share_of[np.minimum(group, len(shares))]
    order = np.lexsort((by_name, -scored.score, place))[:depth].tolist()
    return [Candidate(scored.product_ids[i], score, CONTENT, scored.liked[best])
            for i, score, best in zip(order, scored.score[order].tolist(), scored.best[order].tolist())]
