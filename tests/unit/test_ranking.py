import numpy as np
import pytest

from shared.ranking import (CONTENT, POPULAR, SIMILAR, Candidate, blend, collaborative_scores, mmr_rerank,
                            strongest_rows, top_candidates)


NAMES = np.array(["x", "y", "z", "w"], dtype=object)  # a vocabulary: product codes 0..3


def flat(table: dict[str, list[tuple[str, float]]]):
    rows = list(table)
    code = {name: i for i, name in enumerate(NAMES)}
    row = np.repeat(np.arange(len(rows)), [len(table[r]) for r in rows])
    neighbour = np.array([code[n] for r in rows for n, _ in table[r]], dtype=np.int32)
    weight = np.array([w for r in rows for _, w in table[r]], dtype=np.float32)
    return rows, row, neighbour, weight


def test_collaborative_scores_add_up_and_name_the_biggest_contributor():
    rows, row, neighbour, weight = flat({"a": [("x", 0.5), ("y", 0.1)], "b": [("x", 0.2), ("z", 0.9)]})
    scores = collaborative_scores(np.array([1.0, -0.5]), row, neighbour, weight)  # a liked, b disliked
    assert NAMES[scores.ids].tolist() == ["x", "y", "z"]  # nothing reached w
    assert scores.score.tolist() == pytest.approx([0.5 - 0.2 * 0.5, 0.1, -0.45])
    because = strongest_rows(np.array([1.0, -0.5]), row, neighbour, weight, scores.ids)
    assert [rows[b] for b in because] == ["a", "a", "b"]  # z: what a disliked product's fans like, pushed down
    assert len(collaborative_scores(np.zeros(2), row, neighbour, weight).ids) == 0
    best = top_candidates(NAMES[scores.ids], scores.score, [SIMILAR] * 3, 2)
    assert [(c.product_id, c.source, c.because) for c in best] == [("x", SIMILAR, None), ("y", SIMILAR, None)]


def test_blend_excludes_ranks_keeps_the_biggest_terms_reason_and_falls_back_to_popular():
    collaborative = [Candidate("x", 2.0, SIMILAR, "a"), Candidate("y", 1.0, SIMILAR, "a")]
    content = [Candidate("w", 1.0, CONTENT, "b")]
    ranked = blend([(1.0, collaborative), (0.5, content)], {"p": 1.0, "x": 0.0}, 0.1, {"y"}, k=3)
    assert [(c.product_id, c.source, c.because) for c in ranked] == [("x", SIMILAR, "a"), ("w", CONTENT, "b"),
                                                                     ("p", POPULAR, None)]
    cold = blend([], {"p": 1.0, "q": 0.5}, 0.1, set(), k=2)
    assert [(c.product_id, c.source) for c in cold] == [("p", POPULAR), ("q", POPULAR)]


def test_blend_scales_each_part_by_its_best_remaining_candidate():
    ranked = blend([(1.0, [Candidate("gone", 10.0, SIMILAR, "a"), Candidate("x", 2.0, SIMILAR, "a")])], {}, 0.1,
                   {"gone"}, k=1)
    assert ranked[0].score == 1.0


def test_equal_scores_rank_by_product_id_in_the_blend_and_the_collaborative_top():
    tied = [Candidate("c", 1.0, SIMILAR, "h"), Candidate("a", 1.0, SIMILAR, "h"), Candidate("b", 1.0, SIMILAR, "h")]
    assert [c.product_id for c in blend([(1.0, tied)], {"d": 0.0}, 0.1, set(), k=2)] == ["a", "b"]
    assert [c.product_id for c in blend([(1.0, tied)], {"a": 0.5, "d": 0.0}, 0.1, set(), k=3)] == ["a", "b", "c"]
    best = top_candidates(np.array(["c", "a", "b", "z"], dtype=object), np.array([0.5, 0.5, 0.5, 0.9]), [SIMILAR] * 4, 4)
    assert [c.product_id for c in best] == ["z", "a", "b", "c"]


def test_mmr_with_diversity_breaks_up_near_duplicates():
    ranked = [Candidate("a", 1.0, SIMILAR), Candidate("a2", 0.99, SIMILAR), Candidate("b", 0.9, SIMILAR)]
    vectors = {"a": np.array([1.0, 0.0]), "a2": np.array([2.0, 0.0]), "b": np.array([0.0, 1.0])}
    assert [c.product_id for c in mmr_rerank(ranked, vectors, 3, diversity=0.0)] == ["a", "a2", "b"]
    assert [c.product_id for c in mmr_rerank(ranked, vectors, 3, diversity=0.5)] == ["a", "b", "a2"]


def test_collaborative_scores_are_the_same_summed_densely_or_sorted():
    rng = np.random.default_rng(3)
    row, weight = rng.integers(0, 40, 2_000), rng.random(2_000)
    row_weight = rng.normal(size=40)
    for top in (500, 10_000_000):  # codes few enough to sum into an array of them all; too many for that
        neighbour = rng.integers(0, top, 2_000)
        scores = collaborative_scores(row_weight, row, neighbour, weight)
        expected = {}
        for r, n, w in zip(row, neighbour, weight):
            expected[int(n)] = expected.get(int(n), 0.0) + row_weight[r] * w
        assert scores.ids.tolist() == sorted(expected)
        assert np.allclose(scores.score, [expected[n] for n in sorted(expected)])
