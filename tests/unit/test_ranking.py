import numpy as np
import pytest

from shared.ranking import SIMILAR, Candidate, blend, collaborative_scores, mmr_rerank, strongest_rows


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


def codes(*names: str) -> np.ndarray:
    return np.array([NAMES.tolist().index(name) for name in names], dtype=np.int64)


def name_of(code: int) -> str:
    return NAMES[code]


def test_blend_sums_scaled_parts_and_popularity_and_names_the_largest_term():
    popularity = np.array([0.0, 0.0, 0.0, 1.0], dtype=np.float32)  # w is popular
    ranked = blend([(1.0, codes("x", "y"), np.array([2.0, 1.0])), (0.5, codes("z", "x"), np.array([1.0, 0.5]))],
                   codes("w"), popularity, 0.1, name_of, k=3)
    assert [(pid, round(total, 6), part, of) for pid, total, part, of in ranked] == [
        ("x", 1.25, 0, 0), ("y", 0.5, 0, 1), ("z", 0.5, 1, 0)]  # y and z tie: by id
    assert [(pid, part) for pid, _, part, _ in blend([], codes("w", "x"), popularity, 0.1, name_of, k=2)] == \
        [("w", -1), ("x", -1)]  # a cold user: popularity alone (x scores 0)


def test_a_part_is_scaled_by_its_best_candidate_and_counts_for_nothing_when_none_is_positive():
    ranked = blend([(1.0, codes("x", "y"), np.array([4.0, 2.0])), (1.0, codes("z"), np.array([-1.0]))],
                   codes(), np.zeros(0, dtype=np.float32), 0.1, name_of, k=3)
    assert [(pid, total, part) for pid, total, part, _ in ranked] == [("x", 1.0, 0), ("y", 0.5, 0), ("z", 0.0, -1)]


def test_equal_totals_rank_by_product_id_whatever_the_codes():
    tied = (1.0, codes("y", "w", "x"), np.array([1.0, 1.0, 1.0]))  # w: the last code, the first id
    assert [pid for pid, *_ in blend([tied], codes("z"), np.zeros(4, dtype=np.float32), 0.1, name_of, k=2)] == ["w", "x"]


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
