"""The collaborative part and the hybrid blend, pure."""
import numpy as np
import pytest

from services.api.hybrid import Neighbourhood, Tuning, blend, collaborative, content_by_rank, explain
from shared.interactions import ProductWeights
from shared.neighbours import CollaborativeModel
from shared.ranking import CONTENT, NEXT, POPULAR, SIMILAR, BlendWeights, Candidate


def model_of(similar: dict, following: dict) -> CollaborativeModel:
    """A model of the `similar` and `following` tables (`{product: [(neighbour, weight), ...]}`)."""
    return CollaborativeModel.of_pairs(1, {"similar": similar, "next": following})


def tables(similar: dict, following: dict) -> tuple:
    """The neighbour rows of every product of both tables, as a request reads them from its tenant's model."""
    model = model_of(similar, following)
    return model.rows("similar", list(similar)), model.rows("next", list(following))


def test_tuning_parses_overrides_and_names_what_is_wrong():
    tuning = Tuning.parse("content:0.5,next:0.2")
    assert tuning.blend == BlendWeights(content=0.5) and tuning.next_weight == 0.2
    assert Tuning.parse(None) == Tuning()
    for text, problem in (("magic:1", "unknown weight"), ("content:11", "between 0 and 10"),
                          ("content:x", "needs a number")):
        with pytest.raises(ValueError, match=problem):
            Tuning.parse(text)


def test_collaborative_blends_what_fans_liked_with_what_came_next_naming_the_source():
    history = ProductWeights(["b", "a"], np.array([1.0, 1.0]))  # b is the newest
    similar, following = tables({"a": [("x", 1.0), ("y", 0.5)]}, {"b": [("y", 1.0), ("z", 0.2)]})
    rows = Neighbourhood.of(history, similar, following)
    ranked = collaborative(rows, next_weight=0.4)
    assert all(c.because is None for c in ranked)  # named for the shown ones only
    code_of = model_of({"a": [("x", 1.0), ("y", 0.5)]}, {"b": [("y", 1.0), ("z", 0.2)]}).code_of
    by_id = {c.product_id: c for c in explain(ranked, rows, code_of)}
    assert (by_id["x"].source, by_id["x"].because) == (SIMILAR, "a")
    assert by_id["y"].score == pytest.approx(0.5 + 0.4) and by_id["y"].source == SIMILAR
    assert (by_id["z"].source, by_id["z"].because) == (NEXT, "b") and by_id["z"].score == pytest.approx(0.4 * 0.2)
    assert [c.product_id for c in ranked] == ["x", "y", "z"]
    assert collaborative(rows, next_weight=0.4, limit=1) == ranked[:1]
    shown = [ranked[2], Candidate("w", 1.0, CONTENT, "a"), Candidate("p", 0.5, POPULAR)]
    assert explain(shown, rows, code_of)[1:] == shown[1:]  # only collaborative ones
    only_next = collaborative(Neighbourhood.of(history, *tables({}, {"b": [("y", 1.0), ("z", 0.2)]})), next_weight=0.0)
    assert {(c.product_id, c.source) for c in only_next} == {("y", NEXT), ("z", NEXT)}


def test_a_dislike_pushes_what_its_fans_liked():
    history = ProductWeights(["hated", "loved"], np.array([-0.3, 1.0]))
    rows = Neighbourhood.of(history, *tables({"loved": [("x", 1.0), ("y", 0.9)], "hated": [("y", 1.0)]}, {}))
    ranked = collaborative(rows, 0.4)
    assert [c.product_id for c in ranked][0] == "x" and ranked[-1].product_id == "y"
    code_of = model_of({"loved": [("x", 1.0), ("y", 0.9)], "hated": [("y", 1.0)]}, {}).code_of
    assert [c.because for c in explain(ranked, rows, code_of)] == ["loved", "loved"]  # y: loved's +0.9 > hated's -0.3


def test_content_ranks_become_scores_in_0_1():
    ranked = content_by_rank([Candidate("a", 0.2, CONTENT, "h"), Candidate("b", 0.9, CONTENT, "h")])
    assert [(c.product_id, c.score) for c in ranked] == [("a", 1.0), ("b", 0.5)]


def test_the_blend_drops_what_scores_nothing_and_respects_exclusions():
    collaborative_part = [Candidate("x", 1.0, SIMILAR, "a"), Candidate("bad", -1.0, SIMILAR, "a")]
    content_part = [Candidate("w", 0.9, CONTENT, "b"), Candidate("x", 0.1, CONTENT, "b")]
    ranked = blend(collaborative_part, content_part, {"p": 0.5, "unpopular": 0.0}, {"w"}, 10,
                   Tuning.parse("popularity:0.1"))
    assert [c.product_id for c in ranked] == ["x", "p"]
    assert ranked[0].source == SIMILAR and ranked[1].source == POPULAR
