"""Request-time ranking, pure: history weights, collaborative scores, the blend, MMR.

The api fetches from PostgreSQL what these functions take as plain dicts: the history's weights
(`shared.interactions`), the item-neighbour rows of the user's history products, content scores, popularity scores in [0, 1] and, for MMR, the
candidates' unit vectors. Nothing here does I/O. Defaults were set with `make eval` (EVAL.md).
"""
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

POPULAR = "popular"

# candidate product -> (score, the history product that contributed most)
Scored = dict[str, tuple[float, str]]


class Recommendation(NamedTuple):
    product_id: str
    score: float
    reason: str  # "collaborative", "content" or "popular"
    because: str | None  # the history product behind a collaborative or content reason


@dataclass(frozen=True)
class BlendWeights:
    collaborative: float = 1.0
    content: float = 0.3
    popularity: float = 0.1


def collaborative_scores(weights: Mapping[str, float],
                         neighbours: Mapping[str, Sequence[tuple[str, float]]]) -> Scored:
    """score(j) = sum over history products h of weights[h] * neighbour_weight(h, j)."""
    totals: dict[str, float] = {}
    best: dict[str, tuple[float, str]] = {}
    for history_id, weight in weights.items():
        if weight == 0:
            continue
        for candidate, neighbour_weight in neighbours.get(history_id, ()):
            part = weight * neighbour_weight
            totals[candidate] = totals.get(candidate, 0.0) + part
            if part > best.get(candidate, (-math.inf, ""))[0]:
                best[candidate] = (part, history_id)
    return {candidate: (total, best[candidate][1]) for candidate, total in totals.items()}


def blend(collaborative: Scored, content: Scored, popularity: Mapping[str, float],
          exclude: Collection[str], k: int, weights: BlendWeights = BlendWeights()) -> list[Recommendation]:
    """The top `k` candidates not in `exclude` by the weighted sum of collaborative score / its
    largest value among the candidates, content score and popularity (already in [0, 1]).

    Candidates are the union of the three inputs; pass popularity for the collaborative and content
    candidates as well as for the top popular products, which keep cold users served."""
    excluded = set(exclude)
    candidates = (collaborative.keys() | content.keys() | popularity.keys()) - excluded
    top_collaborative = max((collaborative[c][0] for c in candidates if c in collaborative), default=0.0)
    collaborative_scale = weights.collaborative / top_collaborative if top_collaborative > 0 else 0.0
    ranked = [_recommendation(c, collaborative, content, popularity, collaborative_scale, weights)
              for c in candidates]
    ranked.sort(key=lambda r: (-r.score, r.product_id))
    return ranked[:k]


def _recommendation(candidate: str, collaborative: Scored, content: Scored, popularity: Mapping[str, float],
                    collaborative_scale: float, weights: BlendWeights) -> Recommendation:
    collaborative_score, collaborative_from = collaborative.get(candidate, (0.0, ""))
    content_score, content_from = content.get(candidate, (0.0, ""))
    parts = {
        "collaborative": (collaborative_scale * collaborative_score, collaborative_from),
        "content": (weights.content * content_score, content_from),
        POPULAR: (weights.popularity * popularity.get(candidate, 0.0), None),
    }
    reason = max(parts, key=lambda name: parts[name][0])
    if parts[reason][0] <= 0:
        reason = POPULAR
    total = sum(part for part, _ in parts.values())
    return Recommendation(candidate, total, reason, parts[reason][1])


def mmr_rerank(ranked: Sequence[Recommendation], vectors: Mapping[str, np.ndarray], k: int,
               diversity: float) -> list[Recommendation]:
    """Greedy maximal marginal relevance over `ranked` (e.g. the blend's top 100): each pick maximises
    (1 - diversity) * relevance - diversity * (largest cosine to the picks so far), relevance being
    the score min-max scaled to [0, 1]. `vectors` are unit-norm; a missing one counts as dissimilar."""
    if diversity <= 0 or len(ranked) <= 1:
        return list(ranked[:k])
    scores = np.array([r.score for r in ranked])
    relevance = (scores - scores.min()) / max(scores.max() - scores.min(), 1e-12)
    similarity = _cosine_matrix([r.product_id for r in ranked], vectors)
    closest = np.full(len(ranked), -np.inf)
    available = np.ones(len(ranked), dtype=bool)
    picks: list[int] = []
    while len(picks) < min(k, len(ranked)):
        redundancy = np.where(np.isfinite(closest), closest, 0.0)
        value = np.where(available, (1 - diversity) * relevance - diversity * redundancy, -np.inf)
        pick = int(np.argmax(value))
        picks.append(pick)
        available[pick] = False
        closest = np.maximum(closest, similarity[pick])
    return [ranked[i] for i in picks]


def _cosine_matrix(product_ids: Sequence[str], vectors: Mapping[str, np.ndarray]) -> np.ndarray:
    dimensions = next((len(v) for v in vectors.values()), 1)
    matrix = np.zeros((len(product_ids), dimensions))
    for row, product_id in enumerate(product_ids):
        if product_id in vectors:
            matrix[row] = vectors[product_id]
    return matrix @ matrix.T
