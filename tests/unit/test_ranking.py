import numpy as np

from shared.ranking import BlendWeights, blend, collaborative_scores, mmr_rerank


def test_collaborative_scores_add_up_and_name_the_biggest_contributor():
    neighbours = {"a": [("x", 0.5), ("y", 0.1)], "b": [("x", 0.2), ("z", 0.9)]}
    scores = collaborative_scores({"a": 1.0, "b": -0.5}, neighbours)
    assert scores["x"][0] == 0.5 - 0.1 and scores["x"][1] == "a"
    assert scores["z"][0] < 0  # what a disliked product's fans like is pushed down


def test_blend_excludes_ranks_and_falls_back_to_popular_for_cold_users():
    ranked = blend({"x": (2.0, "a"), "y": (1.0, "a")}, {"w": (1.0, "b")}, {"p": 1.0, "x": 0.0}, {"y"}, k=3,
                   weights=BlendWeights(collaborative=1, content=0.5, popularity=0.1))
    assert [r.product_id for r in ranked] == ["x", "w", "p"]
    assert [r.reason for r in ranked] == ["collaborative", "content", "popular"]
    cold = blend({}, {}, {"p": 1.0, "q": 0.5}, set(), k=2)
    assert [(r.product_id, r.reason) for r in cold] == [("p", "popular"), ("q", "popular")]


def test_mmr_with_diversity_breaks_up_near_duplicates():
    ranked = blend({"a": (1.0, "h"), "a2": (0.99, "h"), "b": (0.9, "h")}, {}, {}, set(), k=3)
    vectors = {"a": np.array([1.0, 0.0]), "a2": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0])}
    assert [r.product_id for r in mmr_rerank(ranked, vectors, 3, diversity=0.0)] == ["a", "a2", "b"]
    assert [r.product_id for r in mmr_rerank(ranked, vectors, 3, diversity=0.5)] == ["a", "b", "a2"]
