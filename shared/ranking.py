"""Request-time ranking, pure: one candidate type, collaborative scores, the blend, MMR.

The api fetches from PostgreSQL what these functions take: the history's weights
(`shared.interactions`), the neighbour rows of its products as numpy arrays, the content ranking,
popularity in [0, 1] and, for MMR, the candidates' vectors. Nothing here does I/O. Defaults were
set with `make eval` (EVAL.md).
"""
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

CONTENT = "content"  # resembles a liked product (`because`)
SIMILAR = "similar"  # people who liked `because` also liked it
NEXT = "next"  # people went on to it after `because`
POPULAR = "popular"


class Candidate(NamedTuple):
    """A tuple: a request makes hundreds of them, and a frozen dataclass costs several times more to build."""

    product_id: str
    score: float
    source: str  # CONTENT, SIMILAR, NEXT or POPULAR
    because: str | None = None  # the history product behind the source, where there is one


@dataclass(frozen=True)
class BlendWeights:
    collaborative: float = 1.0
    content: float = 0.3
    popularity: float = 0.05  # make eval on the tuned users: 0.1 cost coverage, 0.05 helped a little (EVAL.md)


DENSE_PER_PAIR = 64  # collaborative_scores marks codes in an array of every code up to this many per pair (else sorts)


@dataclass(frozen=True)
class Scores:
    """Scores of some products, by their integer codes in the collaborative model (`shared.neighbours`)."""

    ids: np.ndarray  # product codes (ascending from `collaborative_scores`)
    score: np.ndarray  # float64: summed over the history rows
    source: np.ndarray | None = None  # per product, SIMILAR or NEXT: the table that contributed most


def collaborative_scores(row_weight: np.ndarray, row: np.ndarray, neighbour: np.ndarray,
                         weight: np.ndarray) -> Scores:
    """score(j) = sum over history rows h of row_weight[h] * weight(h, j), from flattened neighbour
    rows (pair i: row `row[i]` to product code `neighbour[i]` with `weight[i]`). A negative total
    is what fans of disliked products like."""
    parts = np.asarray(row_weight, dtype=np.float64)[row] * weight
    keep = parts != 0
    codes, parts = neighbour[keep], parts[keep]
    if len(codes) and int(codes.max()) < DENSE_PER_PAIR * len(codes):  # marking an array of every code beats sorting
        seen = np.zeros(int(codes.max()) + 1, dtype=bool)
        seen[codes] = True
        reached = np.flatnonzero(seen)
        return Scores(reached, np.bincount(codes, weights=parts)[reached])
    ids, inverse = np.unique(codes, return_inverse=True)
    return Scores(ids, np.bincount(inverse, weights=parts, minlength=len(ids)))


def strongest_rows(row_weight: np.ndarray, row: np.ndarray, neighbour: np.ndarray, weight: np.ndarray,
                   codes: np.ndarray) -> np.ndarray:
    """For each of the product `codes` (ascending), the history row that contributed the largest
    part to its score (the reason shown), -1 where none did; pairs as in `collaborative_scores`."""
    strongest = np.full(len(codes), -1, dtype=np.int64)
    if not len(codes):
        return strongest
    parts = np.asarray(row_weight, dtype=np.float64)[row] * weight
    wanted = np.zeros(max(int(neighbour.max(initial=0)), int(codes.max())) + 1, dtype=bool)
    wanted[codes] = True  # a lookup table: only the pairs that reach `codes` are searched for
    keep = wanted[neighbour] & (parts != 0)
    at, parts, rows = np.searchsorted(codes, neighbour[keep]), parts[keep], row[keep]
    if len(at):
        order = np.lexsort((-parts, at))  # per product, the largest part first
        first = order[np.r_[True, at[order][1:] != at[order][:-1]]]
        strongest[at[first]] = rows[first]
    return strongest


def blend(parts: Sequence[tuple[float, np.ndarray, np.ndarray]], popular: np.ndarray, popularity: np.ndarray,
          popularity_weight: float, name_of: Callable[[int], str], k: int) -> list[tuple[str, float, int, int]]:
    """The top `k` products by sum_i weight_i * score_i / (largest score_i) + popularity_weight *
    popularity, over product codes: `parts` are (weight, codes, scores), each naming a code at most
    once, exclusions already taken out; `popular` names more codes (the most popular products: they
    keep cold users served); `popularity` is per code, 0 beyond its end. A part whose scores are all
    <= 0 counts for nothing. Each result is (product id, total, the part whose term is largest, the
    candidate's index in that part); the part is -1 where popularity is the largest term or nothing
    is positive. Ties rank by product id (`name_of` a code)."""
    codes = np.concatenate([part[1] for part in parts] + [popular]).astype(np.int64, copy=False)
    if not len(codes):
        return []
    union, place = np.unique(codes, return_inverse=True)
    total, best_term = np.zeros(len(union)), np.zeros(len(union))
    best_part, best_of = np.full(len(union), -1), np.zeros(len(union), dtype=np.int64)
    start = 0
    for part, (weight, part_codes, scores) in enumerate(parts):
        at, start = place[start:start + len(part_codes)], start + len(part_codes)
        top = scores.max(initial=0.0)
        if top <= 0 or weight == 0:
            continue
        term = weight * np.asarray(scores, dtype=np.float64) / top
        total[at] += term
        larger = term > best_term[at]  # the first part keeps a tie
        best_term[at[larger]], best_part[at[larger]], best_of[at[larger]] = term[larger], part, np.flatnonzero(larger)
    known = union < len(popularity)
    popular_term = np.zeros(len(union))
    popular_term[known] = popularity_weight * popularity[union[known]].astype(np.float64)
    total += popular_term
    best_part[popular_term > best_term] = -1  # popularity is the largest term
    chosen = np.arange(len(total)) if len(total) <= k else np.flatnonzero(total >= np.partition(total, -k)[-k])
    ranked = sorted(zip((-total[chosen]).tolist(), map(name_of, union[chosen].tolist()),  # ids differ: ties end there
                        best_part[chosen].tolist(), best_of[chosen].tolist()))[:k]
    return [(pid, -negative, part, of) for negative, pid, part, of in ranked]


def mmr_rerank(ranked: Sequence[Candidate], vectors: Mapping[str, np.ndarray], k: int,
               diversity: float) -> list[Candidate]:
    """Greedy maximal marginal relevance over `ranked` (e.g. the blend's top 100): each pick maximises
    (1 - diversity) * relevance - diversity * (largest cosine to the picks so far), relevance being
    the score min-max scaled to [0, 1]. A missing vector counts as dissimilar to everything."""
    if diversity <= 0 or len(ranked) <= 1:
        return list(ranked[:k])
    scores = np.array([c.score for c in ranked])
    relevance = (scores - scores.min()) / max(scores.max() - scores.min(), 1e-12)
    similarity = _cosine_matrix([c.product_id for c in ranked], vectors)
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
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix /= np.maximum(norms, 1e-12)
    return matrix @ matrix.T
