"""The gateway bench's replay: a request's Store answers, given back without I/O, give its page again."""
import numpy as np
import pytest

from services.api.recommend import recommend
from tests.unit.test_recommend import catalogue, ids, request
from tools.bench.replay import Answers, Replay, ranking_cpu_ms


async def test_kept_answers_replayed_give_the_same_page_without_the_store():
    store = catalogue()
    answers = Answers(store)
    page = await recommend(answers, request(limit=10), "wyatt")
    assert len(answers.kept) == len(store.calls) == 5  # history, model, vectors, candidates, page
    store.calls.clear()
    again = await recommend(Replay(answers.kept), request(limit=10), "wyatt")
    assert store.calls == [] and ids(again) == ids(page) and [c for c, _ in again.items] == [c for c, _ in page.items]
    assert await ranking_cpu_ms([(request(limit=10), "wyatt", answers.kept, page)], rounds=2) > 0


async def test_a_replay_that_gives_another_page_fails_the_measurement():
    store = catalogue()
    answers = Answers(store)
    page = await recommend(answers, request(limit=10), "wyatt")
    other = await recommend(store, request(limit=10, strategy="content"), "wyatt")
    with pytest.raises(RuntimeError, match="another page"):
        await ranking_cpu_ms([(request(limit=10), "wyatt", answers.kept, other)], rounds=1)
    assert np.isfinite(await ranking_cpu_ms([(request(limit=10), "wyatt", answers.kept, page)], rounds=1))
