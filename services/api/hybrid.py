"""The collaborative and hybrid rankings, pure: the trainer's neighbour tables applied to the
user's current history at request time (a new like counts in the very next response), blended with
content similarity and popularity by `shared.ranking`.

    collaborative(j) = similar(j) / max + next_weight * next(j) / max
      similar(j) = sum over the SIMILAR_HISTORY latest h of weight(h) * neighbour weight(h, j)  (likes pull, dislikes push)
      next(j)    = sum over the RECENT_ITEMS latest h of recency(h) * follow weight(h, j)
    hybrid(j)    = blend of collaborative, content (the multi-interest content ranking) and popularity

A collaborative candidate's reason is the history product whose row gave the largest part of the
term it came by (similar or next).

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


@dataclass(frozen=True)
class Neighbourhood:
    """A history's neighbour rows in its tenant's model, each with what it counts for: a similar row
    its product's weight, a next row its recency (built once per request, read by `collaborative`)."""

    model: CollaborativeModel
    similar: NeighbourRows
    next: NeighbourRows
    similar_weights: np.ndarray
    next_weights: np.ndarray

    @classmethod
    def of(cls, history: ProductWeights, model: CollaborativeModel, similar_ids: list[str],
           next_ids: list[str]) -> "Neighbourhood":
        """The rows of `similar_ids` in the similar table and of `next_ids` in the next one."""
        similar, following = model.rows("similar", similar_ids), model.rows("next", next_ids)
        weight_of = history.as_dict()
        rank_of = {pid: rank for rank, pid in enumerate(history.latest(RECENT_ITEMS))}
        recency = np.append(recency_weights(RECENT_ITEMS), 0.0)  # the last: a product not among the latest
        return cls(model, similar, following,
                   np.fromiter(map(weight_of.get, similar.row_ids, repeat(0.0)), dtype=np.float64,
                               count=len(similar.row_ids)),
                   recency[np.fromiter(map(rank_of.get, following.row_ids, repeat(RECENT_ITEMS)), dtype=np.int64,
                                       count=len(following.row_ids))])

    def tables(self) -> tuple[tuple[str, NeighbourRows, np.ndarray], ...]:
        return (SIMILAR, self.similar, self.similar_weights), (NEXT, self.next, self.next_weights)


def collaborative(rows: Neighbourhood, next_weight: float, limit: int = COLLABORATIVE_CANDIDATES) -> ranking.Scores:
    """The best `limit` collaborative candidates as the model's product codes (in no order), each with
    the table that contributed most as its source and, as its reason, the code of the history
    product whose row of that table contributed the largest part. Both row sets come from one model
    (`shared.neighbours`: neighbours are integer codes of its products)."""
    ids, total, from_similar, because = ranking.neighbour_scores(
        *((w, table.at, table.row_codes, table.neighbours, table.weights) for _, table, w in rows.tables()),
        float(next_weight), limit, rows.model.slots)
    return ranking.Scores(ids, total, np.where(from_similar, SIMILAR, NEXT), because)


NO_CANDIDATES = ranking.Scores(np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=str),
                               np.zeros(0, dtype=np.int64))


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
    collaborative = ranking.Scores(collaborative.ids[kept], collaborative.score[kept], collaborative.source[kept],
                                   collaborative.because[kept])
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
                           weights.popularity if with_popularity else 0.0, name_of, depth,
                           model.slots if model is not None else None)
    sources = (collaborative.source.tolist(), [CONTENT] * len(content))
    return [Candidate(pid, total, POPULAR) if part < 0
            else Candidate(pid, total, sources[part][of], content[of].because if part else names[collaborative.because[of]])
            for pid, total, part, of in ranked if total > 0]
