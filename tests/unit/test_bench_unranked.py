"""The gateway bench's api without ranking: a user is ranked once; later requests repeat its Store calls."""
from services.api.rec_views import session_history
from services.api.recommend import recommend
from tests.unit.test_recommend import catalogue, ids, request
from tools.bench.unranked import RankedOnce


class Counted:
    def __init__(self):
        self.calls = 0

    async def __call__(self, *args):
        self.calls += 1
        return await recommend(*args)


async def test_a_user_is_ranked_once_and_later_requests_repeat_its_store_calls():
    counted = Counted()
    once = RankedOnce(counted)
    first_store, later_store = catalogue(), catalogue()
    first = await once(first_store, request(limit=10), "wyatt")
    again = await once(later_store, request(limit=10), "wyatt")
    assert counted.calls == 1
    assert later_store.calls == first_store.calls == ["history", "collaborative", "vectors", "candidates", "page"]
    assert again is first and len(ids(first)) == 10

    other = catalogue()
    await once(other, request(limit=10), "ada")  # another user, or the same user with other parameters: ranked
    await once(other, request(limit=5), "wyatt")
    assert counted.calls == 3


async def test_a_session_history_is_always_ranked():
    counted = Counted()
    once = RankedOnce(counted)
    for _ in range(2):
        await once(catalogue(), request(limit=5), None, session_history(["w00"], []))
    assert counted.calls == 2
