"""Request-time ranking, pure: one candidate type, collaborative scores, the blend, MMR.

The api fetches from PostgreSQL what these functions take: the history's weights
(`shared.interactions`), the neighbour rows of its products as numpy arrays, the content ranking,
popularity in [0, 1] and, for MMR, the candidates' vectors. Nothing here does I/O. Defaults were
set with `make eval` (EVAL.md). The loops over every pair of a history's neighbour rows (thousands
per request) are compiled by numba (`@njit`, cached on disk after a process's first call).
"""
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit

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


@dataclass(frozen=True)
class Scores:
    """Scores of some products, by their integer codes in the collaborative model (`shared.neighbours`)."""

    ids: np.ndarray  # product codes
    score: np.ndarray  # float64
    source: np.ndarray | None = None  # per product, SIMILAR or NEXT: the table that contributed most
    because: np.ndarray | None = None  # per product, the code of the history product behind that table's part


def slots(codes: int) -> np.ndarray:
    """The kernels' scratch for a model of `codes` products: one entry per code, -1 between calls (a
    kernel marks the codes it meets and clears them before it returns). One request at a time."""
    return np.full(codes, -1, dtype=np.int64)


@njit(cache=True)
def _place(marks, at, code, ids, count):
    """The place of `code` among the `count` codes met so far (`ids`), marked at marks[at]; a new
    one goes last. Returns (its place, the new count)."""
    j = marks[at]
    if j < 0:
        j = count
        marks[at] = j
        ids[j] = code
        count += 1
    return j, count


@njit(cache=True)
def _add_rows(table, slot, ids, count, sums, reached, strongest, because):
    """sums[j] += row_weight[r] * weight over the pairs of a table's rows (`table`: row_weight, at,
    row_codes, neighbours, weights); a code's j is given in `slot` the first time a non-zero part
    reaches it (ids[j] = code), and because[j] is the code of the row whose part is the largest
    (`strongest[j]`; the first row on a tie). Returns the new count."""
    row_weight, at, row_codes, neighbours, weights = table
    for r in range(at.shape[0]):
        w = row_weight[r]
        row = at[r]
        for k in range(neighbours.shape[1]):
            code = neighbours[row, k]
            if code < 0:
                continue
            part = w * np.float64(weights[row, k])
            if part == 0.0:
                continue
            j = slot[code]
            if j < 0:  # as `_place` does, written out: a call here costs this loop half its speed
                j = count
                slot[code] = j
                ids[j] = code
                count += 1
            sums[j] += part
            if not reached[j] or part > strongest[j]:
                strongest[j], because[j] = part, row_codes[row]
            reached[j] = True
    return count


@njit(cache=True)
def neighbour_scores(similar, following, next_weight, limit, slot):
    """The collaborative candidates from a history's rows of both tables (compiled: numba); each
    table as (row_weight, at, row_codes, neighbours, weights): row r is the table's row at[r],
    the product coded row_codes[at[r]], counting row_weight[r].

        score(j) = similar(j) / max similar + next_weight * next(j) / max next
        similar(j) = sum over the similar rows r of row_weight[r] * weight(r, j); next(j) likewise

    A table whose sums are all <= 0 counts for nothing. Returns the best `limit` as (codes, scores,
    whether the similar table's term is at least the next one's, the code of the history product
    whose row in that table contributed the largest part: the reason), in no order; `slot`
    (`slots`) is left as it was found."""
    capacity = similar[1].shape[0] * similar[3].shape[1] + following[1].shape[0] * following[3].shape[1]
    ids = np.empty(capacity, np.int64)
    s, f = np.zeros(capacity), np.zeros(capacity)
    s_reached, f_reached = np.zeros(capacity, np.bool_), np.zeros(capacity, np.bool_)
    s_strongest, f_strongest = np.zeros(capacity), np.zeros(capacity)
    s_because, f_because = np.full(capacity, -1, np.int64), np.full(capacity, -1, np.int64)
    count = _add_rows(similar, slot, ids, 0, s, s_reached, s_strongest, s_because)
    count = _add_rows(following, slot, ids, count, f, f_reached, f_strongest, f_because)
    s_top, f_top = 0.0, 0.0
    for j in range(count):
        slot[ids[j]] = -1
        if s_reached[j] and s[j] > s_top:
            s_top = s[j]
        if f_reached[j] and f[j] > f_top:
            f_top = f[j]
    total = np.empty(count)
    from_similar = np.zeros(count, np.bool_)
    kept, because = np.empty(count, np.int64), np.empty(count, np.int64)
    n = 0
    for j in range(count):
        in_s, in_f = s_reached[j] and s_top > 0, f_reached[j] and f_top > 0
        if not (in_s or in_f):
            continue
        s_term = s[j] / s_top if in_s else 0.0
        f_term = f[j] / f_top * next_weight if in_f else 0.0
        total[n] = s_term + f_term
        from_similar[n] = in_s and (not in_f or s_term >= f_term)
        kept[n], because[n] = ids[j], s_because[j] if from_similar[n] else f_because[j]
        n += 1
    total, from_similar, kept, because = total[:n], from_similar[:n], kept[:n], because[:n]
    if n <= limit:
        return kept, total, from_similar, because
    threshold = -np.partition(-total, limit - 1)[limit - 1]
    best = np.empty(limit, np.int64)
    m = 0
    for j in range(n):  # above the threshold, then as many at it as fit
        if total[j] > threshold:
            best[m] = j
            m += 1
    for j in range(n):
        if m < limit and total[j] == threshold:
            best[m] = j
            m += 1
    return kept[best], total[best], from_similar[best], because[best]


def blend(parts: Sequence[tuple[float, np.ndarray, np.ndarray]], popular: np.ndarray, popularity: np.ndarray,
          popularity_weight: float, name_of: Callable[[int], str], k: int,
          slot: np.ndarray | None = None) -> list[tuple[str, float, int, int]]:
    """The top `k` products by sum_i weight_i * score_i / (largest score_i) + popularity_weight *
    popularity, over product codes: `parts` are (weight, codes, scores), each naming a code at most
    once, exclusions already taken out; `popular` names more codes (the most popular products: they
    keep cold users served); `popularity` is per code, 0 beyond its end. A part whose scores are all
    <= 0 counts for nothing. Each result is (product id, total, the part whose term is largest, the
    candidate's index in that part); the part is -1 where popularity is the largest term or nothing
    is positive. Ties rank by product id (`name_of` a code). `slot`: the model's `slots`, if any."""
    codes = np.concatenate([part[1] for part in parts] + [popular]).astype(np.int64, copy=False)
    if not len(codes):
        return []
    terms, part_of, index_in = [], [], []
    for number, (weight, part_codes, scores) in enumerate(parts):
        top = scores.max(initial=0.0)
        counts = top > 0 and weight != 0  # else its codes are candidates for their popularity alone
        terms.append(weight * np.asarray(scores, dtype=np.float64) / top if counts else np.zeros(len(part_codes)))
        part_of.append(np.full(len(part_codes), number if counts else -1))
        index_in.append(np.arange(len(part_codes)))
    none = np.zeros(len(popular), dtype=np.int64)
    chosen = _blended(codes, np.concatenate(terms + [none.astype(np.float64)]), np.concatenate(part_of + [none - 1]),
                      np.concatenate(index_in + [none]), popularity, float(popularity_weight), k,
                      slots(0) if slot is None else slot)
    ranked = sorted(zip((-chosen[1]).tolist(), map(name_of, chosen[0].tolist()),  # ids differ: ties end there
                        chosen[2].tolist(), chosen[3].tolist()))[:k]
    return [(pid, -negative, part, of) for negative, pid, part, of in ranked]


@njit(cache=True)
def _blended(codes, terms, part_of, index_in, popularity, popularity_weight, k, slot):
    """`blend`'s sums (compiled: numba): per distinct code, the total of its entries' terms plus its
    popularity term, the part (-1: none) and index of its largest term, the first on a tie; popularity
    takes the place of a smaller largest term. The codes whose total is among the `k` largest (all
    those tied with the k-th too), as (codes, totals, parts, indices). Codes beyond `slot` (products
    the model does not know) are marked in a scratch of their own."""
    beyond = np.full(max(codes.max() + 1 - slot.shape[0], 0), -1, np.int64)
    ids = np.empty(codes.shape[0], np.int64)
    total, best_term = np.zeros(codes.shape[0]), np.zeros(codes.shape[0])
    best_part, best_of = np.full(codes.shape[0], -1, np.int64), np.zeros(codes.shape[0], np.int64)
    n = 0
    for e in range(codes.shape[0]):
        code = codes[e]
        if code < slot.shape[0]:
            j, n = _place(slot, code, code, ids, n)
        else:
            j, n = _place(beyond, code - slot.shape[0], code, ids, n)
        if part_of[e] >= 0:
            total[j] += terms[e]
            if terms[e] > best_term[j]:
                best_term[j], best_part[j], best_of[j] = terms[e], part_of[e], index_in[e]
    for j in range(n):
        code = ids[j]
        if code < slot.shape[0]:
            slot[code] = -1
        term = popularity_weight * np.float64(popularity[code]) if code < popularity.shape[0] else 0.0
        total[j] += term
        if term > best_term[j]:
            best_part[j] = -1
    ids, total, best_part, best_of = ids[:n], total[:n], best_part[:n], best_of[:n]
    if n <= k:
        return ids, total, best_part, best_of
    keep = total >= np.partition(total, n - k)[n - k]
    return ids[keep], total[keep], best_part[keep], best_of[keep]


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
