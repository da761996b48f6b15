"""Content scoring: interests, shares, scores with reasons, interleaving."""
import numpy as np

from services.api.scoring import ContentScores, Vectors, find_interests, interest_shares, interleave, score_content

AXES = np.eye(4, dtype=np.float32)


def test_two_unlike_groups_of_likes_are_two_interests_heaviest_first():
    vectors = {"w1": AXES[0], "w2": AXES[0] + 0.1 * AXES[3], "w3": AXES[0], "c1": AXES[1]}
    weights = {"w1": 1.0, "w2": 1.0, "w3": 1.0, "c1": 1.0}
    interests = find_interests(vectors, weights)
    assert [sorted(i.members) for i in interests] == [["w1", "w2", "w3"], ["c1"]]
    assert interests[0].weight == 3.0 and float(interests[0].centroid @ AXES[0]) > 0.99


def test_dislikes_and_views_form_no_interest():
    assert find_interests({"a": AXES[0], "b": AXES[1]}, {"a": -0.3, "b": 0.0}) == []


def test_shares_follow_the_square_root_of_weight_less_what_nearby_dislikes_take():
    vectors = {"w": AXES[0], "c": AXES[1], "bad": AXES[1]}
    interests = find_interests(vectors, {"w": 4.0, "c": 1.0})
    shares = interest_shares(interests, vectors, {"w": 4.0, "c": 1.0})
    assert np.allclose(shares, [2 / 3, 1 / 3])
    shares_with_dislike = interest_shares(interests, vectors, {"w": 4.0, "c": 1.0, "bad": -0.5})
    assert shares_with_dislike[1] < shares[1] and sum(shares_with_dislike) == 1.0


def test_candidates_score_by_their_best_liked_match_less_a_penalty_near_dislikes():
    vectors = {"w": AXES[0], "c": AXES[1], "bad": AXES[2]}
    weights = {"w": 1.0, "c": 0.5, "bad": -0.3}
    interests = find_interests(vectors, weights)
    candidates = np.stack([AXES[0], AXES[1], 0.7 * AXES[0] + 0.7 * AXES[2]])
    scored = score_content(["x", "y", "z"], candidates, vectors, weights, interests)
    score = dict(zip(scored.product_ids, scored.score.tolist()))
    because = dict(zip(scored.product_ids, [scored.liked[b] for b in scored.best]))
    assert because["x"] == "w" and because["y"] == "c" and score["x"] > score["y"]
    assert score["z"] < score["x"] * 0.71  # resembles the disliked one
    assert scored.group.tolist() == [0, 1, 0]
    ranked = interleave(scored, [0.5, 0.5], 3)
    assert {c.source for c in ranked} == {"content"} and {(c.product_id, c.because) for c in ranked} == {
        ("x", "w"), ("y", "c"), ("z", "w")}


def test_interleave_gives_each_interest_its_share_of_every_prefix():
    vectors = {"w": AXES[0], "c": AXES[1]}
    weights = {"w": 1.0, "c": 1.0}
    interests = find_interests(vectors, weights)
    candidates = np.stack([AXES[0] * (1 - i / 20) + AXES[3] * i / 20 for i in range(6)]
                          + [AXES[1] * (1 - i / 20) + AXES[3] * i / 20 for i in range(3)])
    ids = [f"w{i}" for i in range(6)] + [f"c{i}" for i in range(3)]
    scored = score_content(ids, candidates, vectors, weights, interests)
    order = [c.product_id for c in interleave(scored, [0.5, 0.5], 9)]
    assert {order[0][0], order[1][0]} == {"w", "c"} and order[:4].count("c0") == 1
    assert order[-3:] == ["w3", "w4", "w5"]  # the cartoons ran out; westerns fill the rest in score order
    assert [c.product_id for c in interleave(scored, [0.5, 0.5], 4)] == order[:4]


def test_interleave_breaks_equal_places_by_score_then_by_product_id():
    scored = ContentScores(["b", "a", "c", "d"], np.array([0.5, 0.5, 0.9, 0.1], dtype=np.float32), ["h"],
                           np.zeros(4, dtype=np.int64), np.array([0, 0, 1, 1]))
    assert [c.product_id for c in interleave(scored, [0.5, 0.5], 4)] == ["c", "a", "b", "d"]


def test_vectors_give_unit_rows_of_the_asked_products_in_that_order():
    vectors = Vectors(["a", "b", "zero"], np.stack([3 * AXES[0], AXES[1] + AXES[2], 0 * AXES[0]]))
    units = vectors.units(["b", "a", "zero"])
    assert np.allclose(units, [(AXES[1] + AXES[2]) / np.sqrt(2), AXES[0], 0 * AXES[0]])
    assert vectors.units([], 4).shape == (0, 4) and vectors["a"][0] == 3.0 and "c" not in vectors
    assert Vectors.of(vectors) is vectors and list(Vectors.of({"x": AXES[2]})) == ["x"]


def test_interests_are_the_same_from_a_dictionary_and_from_one_matrix():
    vectors = {"w1": AXES[0], "w2": AXES[0] + 0.1 * AXES[3], "c1": AXES[1], "bad": AXES[1] + AXES[2]}
    weights = {"w1": 1.0, "w2": 0.5, "c1": 1.0, "bad": -1.0}
    matrix = Vectors(list(vectors), np.stack(list(vectors.values())))
    from_dict, from_matrix = find_interests(vectors, weights), find_interests(matrix, weights)
    assert [i.members for i in from_dict] == [i.members for i in from_matrix]
    assert interest_shares(from_dict, vectors, weights) == interest_shares(from_matrix, matrix, weights)
