"""The collaborative model on small matrices, against the formulas it implements."""
import numpy as np
import scipy.sparse as sp

from services.trainer import model
from services.trainer.model import NeighbourConfig, build_item_neighbours, user_item_matrix
from services.trainer.topk import dense_rows_top_k, sparse_rows_top_k
from shared.interactions import popularity


def random_matrix(users: int, items: int, density: float, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    popularity = 1.0 / (np.arange(items) + 2.0)  # a long tail
    dense = rng.random((users, items)) < density * popularity / popularity.mean()
    return sp.csr_matrix(dense.astype(np.float32))


def ease_reference(matrix: sp.csr_matrix, l2_lambda: float) -> np.ndarray:
    """B = I - P / diag(P), P = (X'X + lambda I)^-1, with a zero diagonal (Steck 2019), in float64."""
    gram = (matrix.T @ matrix).toarray().astype(np.float64) + l2_lambda * np.eye(matrix.shape[1])
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    return weights


def test_the_dense_part_is_exact_ease_with_debiased_columns():
    matrix = random_matrix(400, 60, 0.1, seed=1)
    config = NeighbourConfig(l2_lambda=5.0, neighbours_per_item=60, popularity_debias=0.25, max_dense_items=60)
    table = build_item_neighbours(matrix, config)
    counts = np.asarray((matrix > 0).sum(axis=0)).ravel()
    expected = ease_reference(matrix, 5.0) * (counts + 1.0) ** -0.25
    for item in range(60):
        index, weight = table.row(item)
        positive = expected[item] > 0
        assert set(index.tolist()) == set(np.flatnonzero(positive).tolist())
        np.testing.assert_allclose(weight, expected[item, index], rtol=2e-3, atol=1e-6)
        assert np.all(np.diff(weight) <= 0) and item not in index


def test_items_beyond_the_dense_head_get_cosine_neighbours_on_eases_scale():
    matrix = random_matrix(2000, 300, 0.03, seed=2)
    config = NeighbourConfig(max_dense_items=100, neighbours_per_item=20)
    table = build_item_neighbours(matrix, config)
    counts = np.asarray((matrix > 0).sum(axis=0)).ravel()
    tail = np.argsort(-counts, kind="stable")[100:]
    tail = tail[counts[tail] > 0]
    cosine = (matrix.T @ matrix).toarray()
    norms = np.sqrt(np.diag(cosine))
    cosine = cosine / (norms[:, None] * norms[None, :] + config.cosine_shrink) * (counts + 1.0) ** -0.25
    np.fill_diagonal(cosine, 0)
    head_mass = np.median(table.weight[np.sort(np.argsort(-counts, kind="stable")[:100])].sum(axis=1))
    tail_mass = np.median(table.weight[tail].sum(axis=1))
    assert 0.3 < tail_mass / head_mass < 3  # calibrated to EASE's magnitude
    for item in tail[:30]:
        index, weight = table.row(item)
        best = np.argsort(-cosine[item], kind="stable")[:5]
        assert index[0] in best[cosine[item, best] >= cosine[item, best[0]] - 1e-6]  # the best cosine neighbour first
        assert np.all(np.diff(weight) <= 0)


def test_items_without_positive_interactions_have_no_row_and_are_no_neighbour():
    user = np.array([0, 0, 1, 1, 2], dtype=np.int32)
    product = np.array([0, 1, 0, 1, 2], dtype=np.int32)
    weight = np.array([1, 1, 1, 1, 0], dtype=np.float32)  # item 2 only viewed
    table = build_item_neighbours(user_item_matrix(user, product, weight, 3, 3), NeighbourConfig(l2_lambda=1.0))
    assert table.row(0)[0].tolist() == [1] and table.row(1)[0].tolist() == [0]
    assert len(table.row(2)[0]) == 0


def test_sparse_and_dense_top_k_agree():
    rng = np.random.default_rng(3)
    dense = np.where(rng.random((50, 80)) < 0.2, rng.random((50, 80)), 0.0).astype(np.float32)
    dense[7] = 0.0  # an empty row
    dense[9, :5] = -0.5  # negative entries are never kept
    for k in (1, 5, 30):
        d_index, d_weight = dense_rows_top_k(dense, k)
        s_index, s_weight = sparse_rows_top_k(sp.csr_matrix(dense), k)
        np.testing.assert_array_equal(d_weight, s_weight)
        np.testing.assert_array_equal(d_index, s_index)
        assert np.all(s_index[7] == -1)


def test_sparse_top_k_in_many_small_blocks(monkeypatch):
    rng = np.random.default_rng(4)
    matrix = sp.random(300, 300, density=0.05, format="csr", random_state=5, dtype=np.float32)
    whole = sparse_rows_top_k(matrix, 7)
    monkeypatch.setattr("services.trainer.topk.SPARSE_BLOCK_NNZ", 10)
    monkeypatch.setattr(model, "COSINE_BLOCK_NNZ", 10)
    np.testing.assert_array_equal(sparse_rows_top_k(matrix, 7)[0], whole[0])
    config = NeighbourConfig(max_dense_items=20, neighbours_per_item=10)
    data = random_matrix(500, 100, 0.05, seed=int(rng.integers(100)))
    blocked = build_item_neighbours(data, config)
    monkeypatch.setattr(model, "COSINE_BLOCK_NNZ", 10**9)
    monkeypatch.setattr("services.trainer.topk.SPARSE_BLOCK_NNZ", 10**9)
    np.testing.assert_allclose(build_item_neighbours(data, config).weight, blocked.weight, rtol=1e-5)


def test_popularity_of_product_codes_equals_popularity_of_their_ids():
    rng = np.random.default_rng(6)
    codes = rng.integers(0, 50, 1000)
    names = np.array([f"p{c}" for c in codes], dtype=object)
    weights, times = rng.integers(0, 2, 1000).astype(np.float64), rng.uniform(0, 1e8, 1000)
    by_code = popularity(codes, weights, times)
    assert by_code == {int(code[1:]): score for code, score in popularity(names, weights, times).items()}
