"""The collaborative model, trained in batch with numpy/scipy: an item-neighbour table and popularity.

Neighbours: EASE (Steck, 2019) solved exactly for the `max_dense_items` most interacted items, whose
rows keep their top-K positive weights among those items; every other item with interactions gets
cosine neighbours among all items, rescaled to EASE's magnitude. Each weight column is multiplied
by (interactions + 1) ** -popularity_debias, which trades a little accuracy on hits for reach.
The api scores candidate j as sum_h w(h) * weight(h, j) over the user's history (shared.ranking).

Cost, with n users, m items, z interactions, h = min(m, max_dense_items), K neighbours per item:
  Gram of the head     O(sum_u z_u^2) time             8 h^2 bytes (dense float64)
  EASE inverse         O(h^3 / 3) time (Cholesky)      in place; measured peak about 2.4 * 8 h^2 bytes
  tail cosine kNN      O(sum_u z_u * tail_u) time      about 64 MiB per block of tail rows
  table                m * K (index, weight) pairs
At h = 20,000 the head needs about 8 GB at peak and minutes of BLAS; items beyond it cost only
sparse products and block-wise top-K, so 100k items and 10M interactions fit one machine.
"""
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

BLOCK_BYTES = 64 * 2**20
CALIBRATION_SAMPLE = 500

UserProductWeight = tuple[str, str, float]  # (user, product, positive weight)


@dataclass(frozen=True)
class NeighbourConfig:
    l2_lambda: float = 200.0
    neighbours_per_item: int = 200
    popularity_debias: float = 0.25
    max_dense_items: int = 20_000
    cosine_shrink: float = 10.0


@dataclass(frozen=True)
class NeighbourTable:
    product_ids: list[str]
    neighbour_index: np.ndarray  # (items, K) int32 into product_ids, -1 where a row has fewer
    weight: np.ndarray  # (items, K) float32, descending within a row

    def rows(self) -> Iterator[tuple[str, list[tuple[str, float]]]]:
        """(product, [(neighbour, weight), ...]) for each product with neighbours, for storing."""
        for row, product_id in enumerate(self.product_ids):
            pairs = [(self.product_ids[j], float(w))
                     for j, w in zip(self.neighbour_index[row], self.weight[row]) if j >= 0]
            if pairs:
                yield product_id, pairs


def build_item_neighbours(interactions: Iterable[UserProductWeight],
                          config: NeighbourConfig = NeighbourConfig()) -> NeighbourTable:
    """The item-neighbour table from (user, product, weight) rows; duplicates add, weights <= 0 drop."""
    product_ids, matrix = _user_item_matrix(interactions)
    counts = np.diff(matrix.tocsc().indptr)
    debias = (counts + 1.0) ** -config.popularity_debias
    k = config.neighbours_per_item
    index = np.full((len(product_ids), k), -1, dtype=np.int32)
    weight = np.zeros((len(product_ids), k), dtype=np.float32)
    order = np.argsort(-counts, kind="stable")
    head = np.sort(order[:config.max_dense_items][counts[order[:config.max_dense_items]] > 0])
    tail = np.sort(order[config.max_dense_items:][counts[order[config.max_dense_items:]] > 0])
    ease_mass = _fill_ease_rows(matrix, head, debias, config, index, weight)
    if len(tail):
        scale = ease_mass / _cosine_mass(matrix, head, debias, config) if ease_mass > 0 else 1.0
        _fill_cosine_rows(matrix, tail, debias, config, scale, index, weight)
    return NeighbourTable(product_ids, index, weight)


def _user_item_matrix(interactions: Iterable[UserProductWeight]) -> tuple[list[str], sp.csr_matrix]:
    users: dict[str, int] = {}
    products: dict[str, int] = {}
    rows, cols, values = [], [], []
    for user, product, value in interactions:
        if value > 0:
            rows.append(users.setdefault(user, len(users)))
            cols.append(products.setdefault(product, len(products)))
            values.append(value)
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(len(users), len(products)), dtype=np.float64)
    matrix.sum_duplicates()
    return list(products), matrix


def _fill_ease_rows(matrix: sp.csr_matrix, head: np.ndarray, debias: np.ndarray, config: NeighbourConfig,
                    index: np.ndarray, weight: np.ndarray) -> float:
    """EASE rows of the head into the table; returns the median row mass (sum of kept weights)."""
    if len(head) == 0:
        return 0.0
    sub = matrix[:, head]
    gram = (sub.T @ sub).toarray()
    gram[np.diag_indices_from(gram)] += config.l2_lambda
    inverse_upper = _spd_inverse_upper(gram)
    diagonal = inverse_upper.diagonal().copy()
    block = _rows_per_block(len(head))
    masses = []
    for start in range(0, len(head), block):
        stop = min(start + block, len(head))
        rows = -_symmetric_rows(inverse_upper, start, stop) / diagonal
        rows[np.arange(stop - start), np.arange(start, stop)] = 0.0
        rows *= debias[head]
        top, values = _top_positive(rows, config.neighbours_per_item)
        _store(head[start:stop], head[top], values, index, weight)
        masses.append(values.sum(axis=1))
    return float(np.median(np.concatenate(masses)))


def _spd_inverse_upper(gram: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive definite matrix, in place; only its upper triangle is valid."""
    factor, info = lapack.dpotrf(gram.T, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky failed ({info}); raise l2_lambda")
    inverse, info = lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"inverse failed ({info})")
    return inverse


def _symmetric_rows(upper: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows start:stop of the symmetric matrix whose upper triangle `upper` holds."""
    columns = np.arange(upper.shape[1])[None, :]
    rows = np.arange(start, stop)[:, None]
    return np.where(columns >= rows, upper[start:stop, :], upper[:, start:stop].T)


def _cosine_mass(matrix: sp.csr_matrix, head: np.ndarray, debias: np.ndarray, config: NeighbourConfig) -> float:
    """Median row mass of cosine rows over a sample of the head, to put tail rows on EASE's scale."""
    sample_size = min(len(head), CALIBRATION_SAMPLE)
    sample = np.sort(np.random.default_rng(0).choice(head, size=sample_size, replace=False))
    masses = [_top_positive(rows, config.neighbours_per_item)[1].sum(axis=1)
              for _, rows in _cosine_blocks(matrix, sample, debias, config.cosine_shrink)]
    return float(np.median(np.concatenate(masses))) or 1.0


def _fill_cosine_rows(matrix: sp.csr_matrix, items: np.ndarray, debias: np.ndarray, config: NeighbourConfig,
                      scale: float, index: np.ndarray, weight: np.ndarray) -> None:
    for row_items, rows in _cosine_blocks(matrix, items, debias, config.cosine_shrink):
        top, values = _top_positive(rows * scale, config.neighbours_per_item)
        _store(row_items, top, values, index, weight)


def _cosine_blocks(matrix: sp.csr_matrix, items: np.ndarray, debias: np.ndarray,
                   shrink: float) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(items of the block, their shrunk-cosine rows against every item, self excluded, debiased)."""
    by_item = matrix.T.tocsr()
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=0)).ravel())
    block = _rows_per_block(matrix.shape[1])
    for start in range(0, len(items), block):
        row_items = items[start:start + block]
        rows = (by_item[row_items] @ matrix).toarray()
        rows /= norms[row_items, None] * norms[None, :] + shrink
        rows[np.arange(len(row_items)), row_items] = 0.0
        yield row_items, rows * debias


def _top_positive(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of each row's top k, descending; values <= 0 become 0."""
    k = min(k, rows.shape[1])
    top = np.argpartition(-rows, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(rows, top, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.maximum(np.take_along_axis(values, order, axis=1), 0.0)


def _store(row_items: np.ndarray, columns: np.ndarray, values: np.ndarray,
           index: np.ndarray, weight: np.ndarray) -> None:
    k = columns.shape[1]
    index[row_items, :k] = np.where(values > 0, columns, -1)
    weight[row_items, :k] = values


def _rows_per_block(width: int) -> int:
    return max(1, BLOCK_BYTES // (8 * width))
