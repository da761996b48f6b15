"""Content scoring, pure: interests, candidate scores with reasons, interleaving.

No I/O here; `recommend.py` feeds it the history's weights (`shared.interactions`) and vectors
from PostgreSQL. Candidates are `shared.ranking.Candidate`s with source CONTENT.
"""
import math
from dataclasses import dataclass

import numpy as np

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


def _units(vectors: dict[str, np.ndarray], ids: list[str], dimension: int = 0) -> np.ndarray:
    """The vectors of `ids` as one matrix of unit rows (one allocation, not one per vector)."""
    if not ids:
        return np.zeros((0, dimension or len(next(iter(vectors.values()), ()))), dtype=np.float32)
    matrix = np.array([vectors[pid] for pid in ids], dtype=np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def find_interests(vectors: dict[str, np.ndarray], weights: dict[str, float],
                   max_interests: int = MAX_INTERESTS) -> list[Interest]:
    """Group the positively weighted items into at most `max_interests` interests, heaviest first:
    a user who likes westerns and cartoons gets two interests, not one blurred average.

    Average-linkage clustering on cosine similarity: the two closest groups merge while they are
    at least JOIN_SIMILARITY alike on average, or while there are too many groups."""
    ranked = sorted((pid for pid in vectors if weights.get(pid, 0) > 0), key=lambda pid: (-weights[pid], pid))
    liked, rest = ranked[:MAX_CLUSTERED], ranked[MAX_CLUSTERED:]
    if not liked:
        return []
    units = _units(vectors, liked)
    similarity = units @ units.T
    np.fill_diagonal(similarity, -np.inf)
    groups: dict[int, list[int]] = {i: [i] for i in range(len(liked))}
    while len(groups) > 1:
        a, b = np.unravel_index(int(np.argmax(similarity)), similarity.shape)
        if similarity[a, b] < JOIN_SIMILARITY and len(groups) <= max_interests:
            break
        size_a, size_b = len(groups[a]), len(groups[b])
        merged = (similarity[a] * size_a + similarity[b] * size_b) / (size_a + size_b)
        similarity[a], similarity[:, a] = merged, merged
        similarity[a, a] = -np.inf
        similarity[b], similarity[:, b] = -np.inf, -np.inf
        groups[a] += groups.pop(b)
    interests = []
    for members in groups.values():
        member_weights = np.array([weights[liked[i]] for i in members], dtype=np.float32)
        centroid = _unit((units[members] * member_weights[:, None]).sum(axis=0))
        interests.append(Interest([liked[i] for i in members], float(member_weights.sum()), centroid))
    if rest:  # lighter items join the interest they are closest to (the first one on a tie)
        closest = (_units(vectors, rest) @ np.stack([interest.centroid for interest in interests]).T).argmax(axis=1)
        for pid, index in zip(rest, closest.tolist()):
            interests[index].members.append(pid)
            interests[index].weight += weights[pid]
    interests.sort(key=lambda interest: (-interest.weight, interest.members[0]))
    return interests


def interest_shares(interests: list[Interest], vectors: dict[str, np.ndarray],
                    weights: dict[str, float]) -> list[float]:
    """The share of the list each interest gets: by the square root of its weight, so a small
    interest still shows up, less what dislikes close to it take away."""
    disliked = [pid for pid, w in weights.items() if w < 0 and pid in vectors]
    centroids = np.stack([interest.centroid for interest in interests])
    strength = np.array([-weights[pid] for pid in disliked], dtype=np.float32)
    against = (np.maximum(_units(vectors, disliked, centroids.shape[1]) @ centroids.T, 0.0) * strength[:, None]).sum(axis=0)
    masses = [math.sqrt(max(interest.weight - float(a), 0.05 * interest.weight, 1e-9))
              for interest, a in zip(interests, against)]
    total = sum(masses)
    return [mass / total for mass in masses]


def score_content(candidate_ids: list[str], candidates: np.ndarray, vectors: dict[str, np.ndarray],
                  weights: dict[str, float], interests: list[Interest]) -> tuple[list[Candidate], list[int]]:
    """Score each candidate by its best match among the liked items (weighted), minus a penalty
    for resembling a disliked one; `because` is the liked item that contributed most. Also the
    interest each candidate belongs to (that liked item's)."""
    if not candidate_ids:
        return [], []
    candidates = candidates / np.maximum(np.linalg.norm(candidates, axis=1, keepdims=True), 1e-12)
    liked = [pid for interest in interests for pid in interest.members]
    group_of = np.array([g for g, interest in enumerate(interests) for _ in interest.members])
    liked_weights = np.array([weights[pid] for pid in liked], dtype=np.float32)
    factors = 0.5 + 0.5 * liked_weights / liked_weights.max()
    contributions = (candidates @ _units(vectors, liked).T) * factors
    best = contributions.argmax(axis=1)
    scores = contributions[np.arange(len(candidate_ids)), best]
    disliked = [pid for pid, w in weights.items() if w < 0 and pid in vectors]
    if disliked:
        strength = np.array([-weights[pid] for pid in disliked], dtype=np.float32)
        penalty = np.clip(candidates @ _units(vectors, disliked).T, 0, None) * (strength / strength.max())
        scores = scores - DISLIKE_PENALTY * penalty.max(axis=1)
    return ([Candidate(pid, score, CONTENT, liked[b]) for pid, score, b in zip(candidate_ids, scores.tolist(), best.tolist())],
            group_of[best].tolist())


def interleave(scored: list[Candidate], groups: list[int], shares: list[float]) -> list[Candidate]:
    """One list from per-interest rankings: each interest fills its share of every prefix of the
    list (item r of an interest with share s sits at (r + 1) / s). Deterministic."""
    by_group: dict[int, list[Candidate]] = {}
    for item, group in zip(scored, groups):
        by_group.setdefault(group, []).append(item)
    keyed = []
    for group, items in by_group.items():
        items.sort(key=lambda item: (-item.score, item.product_id))
        share = shares[group] if group < len(shares) else min(shares, default=1.0)
        keyed += [((rank + 1) / share, -item.score, item.product_id, item) for rank, item in enumerate(items)]
    keyed.sort(key=lambda entry: entry[:3])
    return [entry[3] for entry in keyed]
