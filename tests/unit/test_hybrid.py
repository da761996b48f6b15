"""The collaborative part and the hybrid blend, pure."""
import numpy as np
import pytest

from services.api.hybrid import Neighbourhood, Tuning, blend, collaborative, explain
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


def candidates(scores, model: CollaborativeModel) -> list[Candidate]:
    """Collaborative scores (codes) as candidates, best first."""
    ranked = [Candidate(pid, score, source) for pid, score, source
              in zip(model.product_ids[scores.ids].tolist(), scores.score.tolist(), scores.source.tolist())]
    return sorted(ranked, key=lambda c: (-c.score, c.product_id))


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
    model = model_of({"a": [("x", 1.0), ("y", 0.5)]}, {"b": [("y", 1.0), ("z", 0.2)]})
    rows = Neighbourhood.of(history, model.rows("similar", ["a"]), model.rows("next", ["b"]))
    ranked = candidates(collaborative(rows, next_weight=0.4), model)
    by_id = {c.product_id: c for c in explain(ranked, rows, model.code_of)}
    assert (by_id["x"].source, by_id["x"].because) == (SIMILAR, "a")
    assert by_id["y"].score == pytest.approx(0.5 + 0.4) and by_id["y"].source == SIMILAR
    assert (by_id["z"].source, by_id["z"].because) == (NEXT, "b") and by_id["z"].score == pytest.approx(0.4 * 0.2)
    assert [c.product_id for c in ranked] == ["x", "y", "z"]
    assert candidates(collaborative(rows, next_weight=0.4, limit=1), model) == ranked[:1]  # the best
    shown = [ranked[2], Candidate("w", 1.0, CONTENT, "a"), Candidate("p", 0.5, POPULAR)]
    assert explain(shown, rows, model.code_of)[1:] == shown[1:]  # only collaborative ones
    only_next = collaborative(Neighbourhood.of(history, model.rows("similar", []), model.rows("next", ["b"])), 0.0)
    assert {(c.product_id, c.source) for c in candidates(only_next, model)} == {("y", NEXT), ("z", NEXT)}


def test_a_dislike_pushes_what_its_fans_liked():
    history = ProductWeights(["hated", "loved"], np.array([-0.3, 1.0]))
    model = model_of({"loved": [("x", 1.0), ("y", 0.9)], "hated": [("y", 1.0)]}, {})
    rows = Neighbourhood.of(history, model.rows("similar", ["hated", "loved"]), model.rows("next", []))
    ranked = candidates(collaborative(rows, 0.4), model)
    assert [c.product_id for c in ranked][0] == "x" and ranked[-1].product_id == "y"
    assert [c.because for c in explain(ranked, rows, model.code_of)] == ["loved", "loved"]  # y: loved's +0.9 > hated's -0.3


def blended(content: list[Candidate], exclude: set[str], tuning: str, popular=("p",)) -> list[Candidate]:
    """The hybrid of: history h, whose fans liked x (and disliked-by-score `bad`), `content`, and
    the popularity of p (0.5) and unpopular (0)."""
    history = ProductWeights(["h", "hated"], np.array([1.0, -1.0]))
    model = CollaborativeModel.of_pairs(1, {"similar": {"h": [("x", 1.0)], "hated": [("bad", 1.0)]}, "next": {}},
                                        {"p": 0.5, "unpopular": 0.0})
    rows = Neighbourhood.of(history, model.rows("similar", ["h", "hated"]), model.rows("next", []))
    popular_codes = model.codes(list(popular))
    return blend(collaborative(rows, 0.0), content, popular_codes[popular_codes >= 0], model, exclude, 10,
                 Tuning.parse(tuning), True)


def test_the_blend_drops_what_scores_nothing_and_respects_exclusions():
    content = [Candidate("w", 0.9, CONTENT, "b"), Candidate("x", 0.1, CONTENT, "b")]
    ranked = blended(content, {"w"}, "popularity:0.1")
    assert [(c.product_id, c.source) for c in ranked] == [("x", SIMILAR), ("p", POPULAR)]  # not bad, not w
    assert ranked[0].score == pytest.approx(1.0 + 0.3)  # x: content's best once w is out, so its whole weight
    assert ranked[1].score == pytest.approx(0.1 * 0.5)


def test_content_ranks_score_in_0_1_and_keep_their_reason():
    content = [Candidate("a", 0.2, CONTENT, "h"), Candidate("new", 0.9, CONTENT, "h")]  # new: unknown to the model
    ranked = blended(content, set(), "collaborative:0,content:1,popularity:0")
    assert [(c.product_id, c.score, c.source, c.because) for c in ranked] == [("a", 1.0, CONTENT, "h"),
                                                                             ("new", 0.5, CONTENT, "h")]
    with_popular = blended(content, set(), "collaborative:0,content:0.1,popularity:1", popular=("p", "new"))
    assert [(c.product_id, c.source) for c in with_popular] == [("p", POPULAR), ("a", CONTENT), ("new", CONTENT)]
