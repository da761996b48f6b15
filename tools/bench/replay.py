"""The request's own work, apart from its round trips: each recorded request's Store answers given
back to `recommend` without I/O, so the CPU that ranking and rendering cost per request is measured
alone (the gateway part's `ranking_cpu_ms`), and a change can be checked to leave the pages as they were.
"""
import json
import time

from threadpoolctl import threadpool_limits

from services.api.rec_views import render
from services.api.recommend import Page, Request, recommend


class Answers:
    """Wraps a Store (or anything like it): gives its answers and keeps them, in order, and the calls
    that asked for them (name, arguments), in the order they were made."""

    def __init__(self, store):
        self.store, self.kept, self.calls = store, [], []

    def __getattr__(self, name: str):
        method = getattr(self.store, name)

        async def keep(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            answer = await method(*args, **kwargs)
            self.kept.append(answer)
            return answer

        return keep


class Replay:
    """Gives kept answers back in order, whatever is asked: a request replayed without I/O."""

    def __init__(self, kept: list):
        self.answers = iter(kept)

    def __getattr__(self, name: str):
        async def give(*args, **kwargs):
            return next(self.answers)

        return give


async def ranking_cpu_ms(recorded: list[tuple[Request, str, list, Page]], rounds: int = 3) -> float:
    """CPU milliseconds per request of `recommend` and rendering over the recorded (request, user,
    kept answers, page), the fastest of `rounds` passes; one BLAS thread, as the api runs. Fails when
    a replay does not give the recorded page."""
    fastest = float("inf")
    with threadpool_limits(1, user_api="blas"):
        for _ in range(rounds):
            started = time.process_time()
            for request, user, kept, page in recorded:
                again = await recommend(Replay(kept), request, user)
                json.dumps(render(again))
                if [c for c, _ in again.items] != [c for c, _ in page.items]:
                    raise RuntimeError(f"the replay of {user}'s request gave another page")
            fastest = min(fastest, (time.process_time() - started) * 1000 / max(len(recorded), 1))
    return round(fastest, 2)
