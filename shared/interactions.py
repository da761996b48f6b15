"""What an interaction is and what it says about taste: the one definition that the api, the
trainer and the evaluation all use.

An interaction is one thing a user did with a product: `purchase`, `like`, `dislike`, `view` or
`rating` (with 0.5-5 stars). Its *preference*:

    purchase, like     +1
    dislike            DISLIKE (pushes away what resembles it)
    view               0: seen, so never recommended again, but it says nothing about taste
    rating             read by its stars: >= LIKE_MIN_STARS a like, <= DISLIKE_MAX_STARS a dislike,
                       anything between a view

Per product in a history the latest event decides (a dislike after a like is a dislike). Recency:
a product's weight halves every HALF_LIFE_DAYS counted back from the user's OWN newest event, not
from the clock, so a history nobody touched for years keeps its shape and a ranking does not
drift while nothing happens.

Training uses the positive part of the preference (likes, purchases, high ratings) without decay.
Popularity (`popularity`) sums those positive weights per product, halving every
POPULARITY_HALF_LIFE_DAYS counted back from the newest interaction of the data given, log-scaled
to [0, 1].
"""
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import NamedTuple

import numpy as np

TYPES = ("purchase", "like", "dislike", "view", "rating")  # in arrays, a type is its index here (`type_codes`)
PREFERENCE = {"purchase": 1.0, "like": 1.0, "dislike": -0.3, "view": 0.0}
LIKE_MIN_STARS = 4.0
DISLIKE_MAX_STARS = 2.0
HALF_LIFE_DAYS = 365.0
POPULARITY_HALF_LIFE_DAYS = 365.0
DAY_S = 86_400.0


class Interaction(NamedTuple):
    product_id: str
    type: str  # one of TYPES
    value: float | None  # stars, for a rating
    occurred_at: datetime
    user_id: str = ""


def effective_type(kind: str, stars: float | None) -> str:
    """A rating reads as a like, dislike or view by its stars; other types are themselves."""
    if kind != "rating":
        return kind
    if stars is not None and stars >= LIKE_MIN_STARS:
        return "like"
    if stars is not None and stars <= DISLIKE_MAX_STARS:
        return "dislike"
    return "view"


RATING = TYPES.index("rating")
_PREFERENCE_OF_CODE = np.array([PREFERENCE.get(kind, 0.0) for kind in TYPES])  # a rating's: by its stars


def type_codes(types) -> np.ndarray:
    """Type names as codes: int8 indices into TYPES."""
    return np.array([TYPES.index(kind) for kind in types], dtype=np.int8)


def preferences(types: np.ndarray, stars: np.ndarray) -> np.ndarray:
    """The preference of each event (`PREFERENCE` of its `effective_type`); `types` as codes into
    TYPES, `stars` NaN where none."""
    types = np.asarray(types)
    stars = np.asarray(stars, dtype=np.float64)
    out = _PREFERENCE_OF_CODE[types]
    rated = types == RATING
    with np.errstate(invalid="ignore"):
        out[rated & (stars >= LIKE_MIN_STARS)] = PREFERENCE["like"]
        out[rated & (stars <= DISLIKE_MAX_STARS)] = PREFERENCE["dislike"]
    return out


def training_weights(types: np.ndarray, stars: np.ndarray) -> np.ndarray:
    """What the collaborative model and popularity learn from: positive evidence of taste only."""
    return np.maximum(preferences(types, stars), 0.0)


def decay(times_s: np.ndarray, reference_s: float, half_life_days: float) -> np.ndarray:
    """0.5 ** (age / half-life), ages counted back from `reference_s` (never negative)."""
    age_days = np.maximum(reference_s - np.asarray(times_s, dtype=np.float64), 0.0) / DAY_S
    return 0.5 ** (age_days / half_life_days)


@dataclass(frozen=True)
class ProductWeights:
    """A history read as one weight per distinct product, the most recently touched first."""

    product_ids: list[str]
    weights: np.ndarray  # float64, aligned with product_ids

    def as_dict(self) -> dict[str, float]:
        """Product id -> weight (built once: a request reads it in several places; do not modify)."""
        return self._by_id

    @cached_property
    def _by_id(self) -> dict[str, float]:
        return dict(zip(self.product_ids, self.weights.tolist()))

    def latest(self, count: int) -> list[str]:
        return self.product_ids[:count]


@dataclass(frozen=True)
class History:
    """One user's interactions as columns (numpy), in any order."""

    product_ids: np.ndarray  # object (str)
    types: np.ndarray  # int8 codes into TYPES
    stars: np.ndarray  # float64, NaN where none
    times_s: np.ndarray  # float64 unix seconds

    @classmethod
    def of(cls, interactions: Sequence[Interaction]) -> "History":
        return cls(
            np.array([i.product_id for i in interactions], dtype=object),
            type_codes([i.type for i in interactions]),
            np.array([np.nan if i.value is None else i.value for i in interactions], dtype=np.float64),
            np.array([i.occurred_at.timestamp() for i in interactions], dtype=np.float64),
        )

    @classmethod
    def empty(cls) -> "History":
        return cls(np.array([], dtype=object), np.array([], dtype=np.int8), np.array([]), np.array([]))

    def __len__(self) -> int:
        return len(self.product_ids)

    def weights(self, half_life_days: float = HALF_LIFE_DAYS) -> ProductWeights:
        """Per product, its latest event's preference decayed by that event's age relative to the
        newest event of the history. Among events at the same instant the later one given wins."""
        if len(self) == 0:
            return ProductWeights([], np.zeros(0))
        # newest first; equal times keep the later position first
        order = np.lexsort((-np.arange(len(self)), -self.times_s))
        ids = self.product_ids[order].tolist()
        first = dict(zip(reversed(ids), range(len(ids) - 1, -1, -1)))  # id -> its first position (a dict: no string sort)
        latest = order[np.sort(np.fromiter(first.values(), dtype=np.int64, count=len(first)))]
        values = preferences(self.types[latest], self.stars[latest])
        values *= decay(self.times_s[latest], float(self.times_s.max()), half_life_days)
        return ProductWeights(self.product_ids[latest].tolist(), values)


def popularity(product_ids: np.ndarray, weights: np.ndarray, times_s: np.ndarray,
               half_life_days: float = POPULARITY_HALF_LIFE_DAYS) -> dict:
    """Product -> popularity in [0, 1]: positive `weights` (see `training_weights`) summed with
    decay from the newest event given, log-scaled so the most popular product scores 1."""
    weights = np.asarray(weights, dtype=np.float64)
    keep = weights > 0
    if not keep.any():
        return {}
    ids = np.asarray(product_ids)[keep]  # strings, or integer codes (the trainer's: sorting those is fast)
    times = np.asarray(times_s, dtype=np.float64)[keep]
    decayed = weights[keep] * decay(times, float(times.max()), half_life_days)
    unique, codes = np.unique(ids, return_inverse=True)
    totals = np.log1p(np.bincount(codes, weights=decayed))
    return dict(zip(unique.tolist(), (totals / totals.max()).tolist()))
