"""Serving one page of recommendations for any history: cursor in, items and next cursor out."""
from aiohttp import web

from services.api import params
from services.api.hybrid import Tuning
from services.api.candidates import Filters
from services.api.keys import database_key, settings_key
from services.api.recommend import DEFAULT_STRATEGY, STRATEGIES, ranked_depth, recommend
from shared.interactions import History

MAX_OFFSET = 10_000


async def ranked_page(request: web.Request, history: History | None, filters: Filters, strategy: str,
                      limit: int, cursor: str | None, identity: tuple, user_id: str | None = None,
                      tuning: Tuning = Tuning(), diversity: float = 0.0) -> dict:
    """`{"items", "next_cursor", "strategy"}` for the history (`history`, or the stored history of
    `user_id`); `identity` names the request so a cursor cannot be replayed against other parameters."""
    fingerprint = params.fingerprint(*identity, strategy, filters, tuning, diversity)
    position = params.decode_cursor(cursor, fingerprint, {"o": int, "d": int})
    offset, depth = (position["o"], position["d"]) if position else (0, ranked_depth(limit))
    if not 0 <= offset <= MAX_OFFSET or not 1 <= depth <= MAX_OFFSET:
        raise params.bad("cursor", "out of range")
    page = await recommend(request.app[database_key].require(), request.app[settings_key],
                           history, filters, strategy, limit, offset, depth, user_id, tuning, diversity)
    more = page.more and offset + limit < MAX_OFFSET
    next_cursor = params.encode_cursor({"o": offset + limit, "d": depth}, fingerprint) if more else None
    return {"items": page.items, "next_cursor": next_cursor, "strategy": strategy}


def strategy(source) -> str:
    return params.choice(source, "strategy", STRATEGIES, DEFAULT_STRATEGY)


def tuning(source) -> Tuning:
    try:
        return Tuning.parse(source.get("weights"))
    except ValueError as exc:
        raise params.bad("weights", str(exc)) from None


def diversity(source) -> float:
    """`diversity` in [0, 1]: 0 ranks by relevance alone, higher trades relevance for variety (MMR)."""
    value = source.get("diversity", 0)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise params.bad("diversity", "a number between 0 and 1") from None
    if not 0 <= number <= 1:
        raise params.bad("diversity", "a number between 0 and 1")
    return number
