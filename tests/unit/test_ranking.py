import numpy as np
import pytest

from shared.ranking import SIMILAR, Candidate, blend, mmr_rerank, neighbour_scores, slots


NAMES = np.array(["x", "y", "z", "w"], dtype=object)  # a vocabulary: product codes 0..3


ROWS = ["a", "b", "c"]  # history products: row_codes name them by their place here


def table(rows: dict[str, list[tuple[str, float]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(rows, row codes, neighbour codes, weights) of a table of `rows` (history products), read as
    a request reads them (row weights come first in `neighbour_scores`)."""
    width = max(len(pairs) for pairs in rows.values())
    code = {name: i for i, name in enumerate(NAMES)}
    neighbours, weights = np.full((len(rows), width), -1, dtype=np.int32), np.zeros((len(rows), width), dtype=np.float32)
    for r, pairs in enumerate(rows.values()):
        neighbours[r, :len(pairs)], weights[r, :len(pairs)] = [code[n] for n, _ in pairs], [w for _, w in pairs]
    return np.arange(len(rows)), np.array([ROWS.index(r) for r in rows], dtype=np.int32), neighbours, weights


NO_ROWS = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros((0, 1), dtype=np.int32),
           np.zeros((0, 1), dtype=np.float32))


def scores(similar_weight, similar, next_weight_of_row=(), following=NO_ROWS, next_weight=0.5, limit=10):
    """{name: (score, whether the similar table's term is the larger, the reason)} of `neighbour_scores`."""
    slot = slots(len(NAMES))
    ids, total, from_similar, because = neighbour_scores(
        (np.asarray(similar_weight, dtype=np.float64), *similar), (np.asarray(next_weight_of_row, dtype=np.float64),
                                                                   *following), next_weight, limit, slot)
    assert (slot == -1).all()  # the scratch is left as it was found
    return {NAMES[i]: (t, s, ROWS[b]) for i, t, s, b in zip(*(a.tolist() for a in (ids, total, from_similar, because)))}


def test_neighbour_scores_add_up_scale_by_the_best_and_name_the_biggest_contributor():
    similar = table({"a": [("x", 0.5), ("y", 0.1)], "b": [("x", 0.2), ("z", 0.9)]})
    found = scores([1.0, -0.5], similar)  # a liked, b disliked: x 0.5 - 0.1 = 0.4 is the best
    assert {name: round(t, 6) for name, (t, _, _) in found.items()} == {"x": 1.0, "y": 0.25, "z": round(-0.45 / 0.4, 6)}
    assert {name: because for name, (_, _, because) in found.items()} == {"x": "a", "y": "a", "z": "b"}
    assert scores([0.0, 0.0], similar) == {}  # nothing liked: nothing reached
    assert scores([-1.0, -1.0], similar) == {}  # a table whose sums are all <= 0 counts for nothing
    tied = table({"a": [("x", 0.5)], "c": [("x", 0.5)]})
    assert scores([1.0, 1.0], tied)["x"][2] == "a"  # equal parts: the first row (the newest history product)


def test_the_next_table_adds_its_scaled_term_and_is_the_source_where_it_is_larger():
    similar, following = table({"a": [("x", 1.0), ("y", 0.5)]}), table({"b": [("y", 2.0), ("z", 1.0)]})
    found = scores([1.0], similar, [1.0], following, next_weight=0.4)
    assert found == {"x": (1.0, True, "a"), "y": (pytest.approx(0.5 + 0.4), True, "a"),
                     "z": (pytest.approx(0.2), False, "b")}
    only_next = scores([0.0], similar, [1.0], following, next_weight=0.4)
    assert only_next == {"y": (pytest.approx(0.4), False, "b"), "z": (pytest.approx(0.2), False, "b")}
    assert set(scores([1.0], similar, [1.0], following, next_weight=0.4, limit=2)) == {"x", "y"}  # the best two


def test_neighbour_scores_equal_plain_sums_on_many_rows():
    rng = np.random.default_rng(3)
    codes, width, rows = 5_000, 50, 300
    neighbours = rng.integers(-1, codes, (rows, width)).astype(np.int32)  # -1: empty slots, anywhere
    weights = rng.random((rows, width)).astype(np.float32)
    row_weight = rng.normal(size=rows)
    at, row_codes = rng.permutation(rows)[:200], rng.permutation(codes)[:rows].astype(np.int32)
    slot = slots(codes)
    similar = (row_weight[:200], at, row_codes, neighbours, weights)
    ids, total, from_similar, because = neighbour_scores(similar, (np.zeros(0), *NO_ROWS), 0.5, 10_000, slot)
    expected: dict[int, float] = {}
    strongest: dict[int, tuple[float, int]] = {}
    for r, row in enumerate(at):
        for n, w in zip(neighbours[row], weights[row]):
            if n >= 0:
                part = row_weight[r] * float(w)
                expected[int(n)] = expected.get(int(n), 0.0) + part
                if int(n) not in strongest or part > strongest[int(n)][0]:
                    strongest[int(n)] = (part, int(row_codes[row]))
    top = max(expected.values())
    assert sorted(ids.tolist()) == sorted(expected) and from_similar.all()
    assert np.allclose(total, [expected[n] / top for n in ids.tolist()])
    assert because.tolist() == [strongest[n][1] for n in ids.tolist()]
    best = neighbour_scores(similar, (np.zeros(0), *NO_ROWS), 0.5, 100, slot)
    assert sorted(best[0].tolist()) == sorted(sorted(expected, key=lambda n: -expected[n])[:100])


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
