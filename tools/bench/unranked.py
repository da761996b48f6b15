"""The api without its ranking, for the gateway bench: the real api (keys, middlewares, the query
object, the Store's statements and their decoding, rendering), except that each user is ranked once:
a later request for that user runs the Store calls of the first one again, with the same arguments,
and gets the first page back. What the api would reach with a ranking that cost nothing, between
the stack's floor (`floor.py`) and the api.

    python -m tools.bench.unranked   (the api's settings: PORT, DATABASE_URL, EF_SEARCH, DB_POOL_MAX...)
"""
from collections.abc import Awaitable, Callable

from services.api import __main__ as api_main
from services.api import rec_views
from tools.bench.replay import Answers


class RankedOnce:
    """`recommend` that ranks a (request, user) once and afterwards only repeats its Store calls."""

    def __init__(self, recommend: Callable[..., Awaitable]):
        self.recommend, self.first = recommend, {}

    async def __call__(self, store, request, user_id, session=None):
        key = (request, user_id)
        if session is not None or key not in self.first:
            answers = Answers(store)
            page = await self.recommend(answers, request, user_id, session)
            if session is None:
                self.first[key] = (answers.calls, page)
            return page
        calls, page = self.first[key]
        for name, args, kwargs in calls:
            await getattr(store, name)(*args, **kwargs)
        return page


def main() -> None:
    rec_views.recommend = RankedOnce(rec_views.recommend)
    api_main.main()


if __name__ == "__main__":
    main()
