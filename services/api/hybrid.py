"""The collaborative and hybrid rankings, pure: the trainer's neighbour tables applied to the
user's current history at request time (a new like counts in the very next response), blended with
content similarity and popularity by `shared.ranking`.

    collaborative(j) = similar(j) / max + next_weight * next(j) / max
      similar(j) = sum over the SIMILAR_HISTORY latest h of weight(h) * neighbour weight(h, j)  (likes pull, dislikes push)
      next(j)    = sum over the RECENT_ITEMS latest h of recency(h) * follow weight(h, j)
    hybrid(j)    = blend of collaborative, content (the multi-interest content ranking) and popularity

Defaults were set by `make eval` on MovieLens (see EVAL.md).
"""
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np

from shared import ranking
from shared.interactions import ProductWeights
from shared.neighbours import CollaborativeModel, NeighbourRows
from shared.ranking import CONTENT, NEXT, POPULAR, SIMILAR, Candidate

NEXT_WEIGHT = 0.6
RECENT_ITEMS = 10
SIMILAR_HISTORY = 300  # the most recent history products the similar table is applied to
COLLABORATIVE_CANDIDATES = 300  # the best collaborative candidates that go on to the blend
POPULAR_CANDIDATES = 200  # and the most popular products (at least a cold user's depth)


@dataclass(frozen=True)
class Tuning:
    """The blend's knobs; requests may override them (`weights=content:0.5,next:0.2`) to tune."""

    blend: ranking.BlendWeights = field(default_factory=ranking.BlendWeights)
    next_weight: float = NEXT_WEIGHT

    @classmethod
    def parse(cls, text: str | None) -> "Tuning":
        """From `name:value,...` with names collaborative, content, popularity, next; ValueError if bad."""
        values = {}
        for part in filter(None, (text or "").split(",")):
            name, _, number = part.partition(":")
            if name not in ("collaborative", "content", "popularity", "next"):
                raise ValueError(f"unknown weight {name!r}; use collaborative, content, popularity, next")
            try:
                values[name] = float(number)
            except ValueError:
                raise ValueError(f"{name} needs a number, as in {name}:0.5") from None
            if not 0 <= values[name] <= 10:
                raise ValueError(f"{name} must be between 0 and 10")
        next_weight = values.pop("next", NEXT_WEIGHT)
        return cls(ranking.BlendWeights(**{**ranking.BlendWeights().__dict__, **values}), next_weight)


def recency_weights(count: int) -> np.ndarray:
    """The latest `count` distinct products, the newest weighing 1 and halving every count / 2."""
    return 0.5 ** (np.arange(count) / (count / 2))


def _scaled(scores: ranking.Scores) -> ranking.Scores:
    """Scores divided by the largest; a table whose scores are all <= 0 counts for nothing."""
    top = scores.score.max(initial=0.0)
    return ranking.Scores(scores.ids, scores.score / top) if top > 0 else ranking.Scores(scores.ids[:0], scores.score[:0])


def _union(similar: ranking.Scores, following: ranking.Scores) -> tuple[np.ndarray, ...]:
    """The codes either table reached (the similar ones first, in no overall order) with each
    table's score on them (0 where it reached none) and whether it reached them. The `next` rows
    are few (RECENT_ITEMS), so only their codes are searched for among the similar ones."""
    at = np.minimum(np.searchsorted(similar.ids, following.ids), max(len(similar.ids) - 1, 0))
    shared = similar.ids[at] == following.ids if len(similar.ids) else np.zeros(len(following.ids), dtype=bool)
    n, extra = len(similar.ids), following.ids[~shared]
    ids = np.concatenate([similar.ids, extra])
    s_score, f_score = np.concatenate([similar.score, np.zeros(len(extra))]), np.zeros(len(ids))
    f_touched = np.zeros(len(ids), dtype=bool)
    f_score[at[shared]], f_touched[at[shared]] = following.score[shared], True
    f_score[n:], f_touched[n:] = following.score[~shared], True
    return ids, s_score, f_score, np.arange(len(ids)) < n, f_touched


@dataclass(frozen=True)
class Neighbourhood:
    """A history's neighbour rows, each with what it counts for: a similar row its product's
    weight, a next row its recency (built once per request, read by `collaborative` and `explain`)."""

    similar: NeighbourRows
    next: NeighbourRows
    similar_weights: np.ndarray
    next_weights: np.ndarray

    @classmethod
    def of(cls, history: ProductWeights, similar: NeighbourRows, following: NeighbourRows) -> "Neighbourhood":
        weight_of = history.as_dict()
        rank_of = {pid: rank for rank, pid in enumerate(history.latest(RECENT_ITEMS))}
        recency = np.append(recency_weights(RECENT_ITEMS), 0.0)  # the last: a product not among the latest
        return cls(similar, following,
                   np.fromiter(map(weight_of.get, similar.row_ids, repeat(0.0)), dtype=np.float64,
                               count=len(similar.row_ids)),
                   recency[np.fromiter(map(rank_of.get, following.row_ids, repeat(RECENT_ITEMS)), dtype=np.int64,
                                       count=len(following.row_ids))])

    def tables(self) -> tuple[tuple[str, NeighbourRows, np.ndarray], ...]:
        return (SIMILAR, self.similar, self.similar_weights), (NEXT, self.next, self.next_weights)


def collaborative(rows: Neighbourhood, next_weight: float, limit: int = COLLABORATIVE_CANDIDATES) -> ranking.Scores:
    """The best `limit` collaborative candidates as the model's product codes (in no order), each with
    the table that contributed most as its source; which history product is behind it is left to
    `explain`, for the candidates shown. Both row sets come from one model (`shared.neighbours`:
    neighbours are integer codes of its products); numpy on codes throughout."""
    similar, following = (_scaled(ranking.collaborative_scores(w, table.row, table.neighbour, table.weight))
                          for _, table, w in rows.tables())
    ids, s_score, f_score, s_touched, f_touched = _union(similar, following)
    f_score *= next_weight
    total = s_score + f_score
    keep = np.argpartition(-total, limit - 1)[:limit] if len(ids) > limit else np.arange(len(ids))
    from_similar = s_touched[keep] & (~f_touched[keep] | (s_score[keep] >= f_score[keep]))
    return ranking.Scores(ids[keep], total[keep], np.where(from_similar, SIMILAR, NEXT))


def explain(shown: list[Candidate], rows: Neighbourhood, code_of: dict[str, int]) -> list[Candidate]:
    """`shown` with `because` set on its collaborative candidates (source SIMILAR or NEXT): the
    history product whose row of that table contributed the largest part (`code_of`: the model's
    product codes). Done for a page, not for every candidate: it searches every pair of the rows."""
    explained = list(shown)
    for source, table, w in rows.tables():
        at = [i for i, c in enumerate(shown) if c.source == source and c.because is None and c.product_id in code_of]
        if not at:
            continue
        codes = np.array([code_of[shown[i].product_id] for i in at])
        order = np.argsort(codes)
        strongest = ranking.strongest_rows(w, table.row, table.neighbour, table.weight, codes[order])
        for i, row in zip(np.array(at)[order].tolist(), strongest.tolist()):
            if row >= 0:
                explained[i] = shown[i]._replace(because=table.row_ids[row])
    return explained


NO_CANDIDATES = ranking.Scores(np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=str))


def blend(collaborative: ranking.Scores, content_ranked: list[Candidate], popular: np.ndarray,
          model: CollaborativeModel | None, exclude: set[str], depth: int, tuning: Tuning,
          with_popularity: bool) -> list[Candidate]:
    """The hybrid: the collaborative candidates (codes of `model`'s products), the multi-interest
    content ranking (scored by rank, in (0, 1]: the interleaving that keeps every interest in the
    list survives the blend) and, `with_popularity`, the popularity of every candidate and of
    `popular` (codes of the most popular products). Only what scores above 0.

    Content candidates the model does not know (added since its training run) get codes after its own."""
    names = model.product_ids if model is not None else np.zeros(0, dtype=object)
    extra: list[str] = []  # code len(names) + i: a product the model does not know

    def name_of(code: int) -> str:
        return names[code] if code < len(names) else extra[code - len(names)]

    kept = ~model.named_in(collaborative.ids, exclude) if exclude and len(collaborative.ids) else slice(None)
    collaborative = ranking.Scores(collaborative.ids[kept], collaborative.score[kept], collaborative.source[kept])
    content = [c for c in content_ranked if c.product_id not in exclude]
    content_ids = [c.product_id for c in content]
    content_codes = model.codes(content_ids) if model is not None else np.full(len(content), -1)
    for i in np.flatnonzero(content_codes < 0).tolist():
        content_codes[i] = len(names) + len(extra)
        extra.append(content_ids[i])
    by_rank = 1 - np.arange(len(content_ranked)) / max(len(content_ranked), 1)
    if len(content) < len(content_ranked):  # the rank among all of them counts
        by_rank = by_rank[[i for i, c in enumerate(content_ranked) if c.product_id not in exclude]]
    weights = tuning.blend
    ranked = ranking.blend([(weights.collaborative, collaborative.ids, collaborative.score),
                            (weights.content, content_codes, by_rank)],
                           popular if with_popularity else np.zeros(0, dtype=np.int64),
                           model.popularity if with_popularity and model is not None else np.zeros(0, dtype=np.float32),
                           weights.popularity if with_popularity else 0.0, name_of, depth)
    sources = (collaborative.source.tolist(), [CONTENT] * len(content))
    return [Candidate(pid, total, POPULAR) if part < 0
            else Candidate(pid, total, sources[part][of], content[of].because if part else None)
            for pid, total, part, of in ranked if total > 0]
