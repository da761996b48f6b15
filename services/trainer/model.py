"""The collaborative model, trained in batch with numpy/scipy: an item-neighbour table and popularity.

Neighbours: EASE (Steck, 2019) solved exactly for the `max_dense_items` most interacted items, whose
rows keep their top-K positive weights among those items; every other item with interactions gets
cosine neighbours among all items, rescaled to EASE's magnitude. Each weight column is multiplied
by (interactions + 1) ** -popularity_debias, which trades a little accuracy on hits for reach.
The api scores candidate j as sum_h w(h) * weight(h, j) over the user's history (shared.ranking).

Cost, with n users, m items, z positive interactions, h = min(m, max_dense_items), K neighbours:
  Gram of the head     O(sum_u z_u^2) sparse products, row block by row block   4 h^2 bytes (float32)
  EASE inverse         O(h^3) BLAS (Cholesky, then its inverse), in place          no second copy
  tail cosine kNN      O(sum_u z_u * tail_u) sparse products, top-K on stored entries only
  table                m * K (index, weight) pairs: 8 m K bytes
h = 10,000 takes about 400 MB and well under a minute of BLAS on two cores; items beyond it cost
only sparse products, so 100k items and 10M interactions train in minutes within a few GB.
"""
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from services.trainer.topk import dense_rows_top_k, sparse_rows_top_k, store_rows
from shared.neighbours import NeighbourTable

DENSE_BLOCK_BYTES = 64 * 2**20
COSINE_BLOCK_NNZ = 8_000_000  # estimated entries of one block of sparse cosine rows
CALIBRATION_SAMPLE = 500


@dataclass(frozen=True)
class NeighbourConfig:
    l2_lambda: float = 200.0
    neighbours_per_item: int = 200
    popularity_debias: float = 0.25
    max_dense_items: int = 10_000
    cosine_shrink: float = 10.0


def user_item_matrix(user: np.ndarray, product: np.ndarray, weight: np.ndarray,
                     users: int, products: int) -> sp.csr_matrix:
    """(users, products) float32 sums of the positive weights; weights <= 0 are left out."""
    positive = weight > 0
    matrix = sp.csr_matrix((weight[positive].astype(np.float32), (user[positive], product[positive])),
                           shape=(users, products), dtype=np.float32)
    matrix.sum_duplicates()
    return matrix


def build_item_neighbours(matrix: sp.csr_matrix, config: NeighbourConfig = NeighbourConfig()) -> NeighbourTable:
    """The item-neighbour table of a (users, products) matrix of positive weights."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    counts = np.bincount(matrix.indices, minlength=matrix.shape[1])
    debias = ((counts + 1.0) ** -config.popularity_debias).astype(np.float32)
    table = NeighbourTable.empty(matrix.shape[1], config.neighbours_per_item)
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] > 0]
    head, tail = np.sort(order[:config.max_dense_items]), np.sort(order[config.max_dense_items:])
    ease_mass = _fill_ease_rows(matrix, head, debias, config, table)
    if len(tail):
        cosine = _Cosine(matrix, debias, config.cosine_shrink)
        scale = ease_mass / cosine.median_mass(head, config.neighbours_per_item) if ease_mass > 0 else 1.0
        for items, rows in cosine.blocks(tail):
            index, weight = sparse_rows_top_k(rows, config.neighbours_per_item)
            store_rows(table, items, index, weight * np.float32(scale))
    return table


def _fill_ease_rows(matrix: sp.csr_matrix, head: np.ndarray, debias: np.ndarray, config: NeighbourConfig,
                    table: NeighbourTable) -> float:
    """EASE rows of the head into the table; returns the median row mass (sum of kept weights)."""
    if len(head) == 0:
        return 0.0
    gram = _dense_gram(matrix[:, head])
    gram[np.diag_indices_from(gram)] += config.l2_lambda
    inverse = _spd_inverse(gram)
    diagonal = inverse.diagonal().copy()
    block = max(1, DENSE_BLOCK_BYTES // (4 * len(head)))
    masses = []
    for start in range(0, len(head), block):
        stop = min(start + block, len(head))
        rows = inverse[start:stop] / -diagonal
        rows[np.arange(stop - start), np.arange(start, stop)] = 0.0
        rows *= debias[head]
        top, values = dense_rows_top_k(rows, config.neighbours_per_item)
        store_rows(table, head[start:stop], np.where(top >= 0, head[top], -1), values)
        masses.append(values.sum(axis=1))
    return float(np.median(np.concatenate(masses)))


def _dense_gram(sub: sp.csr_matrix) -> np.ndarray:
    """sub.T @ sub as a dense float32 array, computed a block of rows at a time (no sparse h x h)."""
    width = sub.shape[1]
    gram = np.empty((width, width), dtype=np.float32)
    by_item = sub.T.tocsr()
    block = max(1, DENSE_BLOCK_BYTES // (4 * width))
    for start in range(0, width, block):
        gram[start:start + block] = (by_item[start:start + block] @ sub).toarray()
    return gram


def _spd_inverse(gram: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive definite float32 matrix, computed in place and symmetric."""
    # gram is symmetric, so its transpose (Fortran order, no copy) is the same matrix for LAPACK.
    factor, info = lapack.spotrf(gram.T, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky failed ({info}); raise l2_lambda")
    inverse, info = lapack.spotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"inverse failed ({info})")
    lower = inverse.T  # C order again; LAPACK's upper triangle is this view's lower one
    _mirror_lower(lower)
    return lower


def _mirror_lower(a: np.ndarray, block: int = 1024) -> None:
    """Copy the lower triangle of a square array onto its upper one, in place, a block at a time."""
    n = a.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        diagonal = a[start:stop, start:stop]
        diagonal[np.triu_indices(stop - start, 1)] = diagonal.T[np.triu_indices(stop - start, 1)]
        a[start:stop, stop:] = a[stop:, start:stop].T


class _Cosine:
    """Shrunk cosine rows of items against every item, self excluded, columns debiased, in sparse blocks."""

    def __init__(self, matrix: sp.csr_matrix, debias: np.ndarray, shrink: float):
        self.matrix = matrix
        self.by_item = matrix.T.tocsr()
        self.norms = np.sqrt(np.bincount(matrix.indices, matrix.data.astype(np.float64) ** 2,
                                         minlength=matrix.shape[1])).astype(np.float32)
        self.debias = debias
        self.shrink = np.float32(shrink)
        # An upper bound on each item's row entries: the interactions of everyone who touched it.
        self.reach = self.by_item @ np.diff(matrix.indptr).astype(np.float64)

    def blocks(self, items: np.ndarray):
        """(items of the block, their rows as CSR) for consecutive blocks of `items`."""
        ends = np.cumsum(np.minimum(self.reach[items], self.matrix.shape[1]))
        start = 0
        while start < len(items):
            stop = int(np.searchsorted(ends, (ends[start - 1] if start else 0) + COSINE_BLOCK_NNZ, side="right"))
            stop = min(max(stop, start + 1), len(items))
            yield items[start:stop], self.rows(items[start:stop])
            start = stop

    def rows(self, items: np.ndarray) -> sp.csr_matrix:
        rows = sp.csr_matrix(self.by_item[items] @ self.matrix)
        row_of = np.repeat(np.arange(len(items)), np.diff(rows.indptr))
        rows.data /= self.norms[items][row_of] * self.norms[rows.indices] + self.shrink
        rows.data *= self.debias[rows.indices]
        rows.data[rows.indices == items[row_of]] = 0.0
        return rows

    def median_mass(self, head: np.ndarray, k: int) -> float:
        """Median row mass of cosine rows over a sample of the head, to put tail rows on EASE's scale."""
        sample = np.sort(np.random.default_rng(0).choice(head, size=min(len(head), CALIBRATION_SAMPLE),
                                                         replace=False))
        masses = [sparse_rows_top_k(rows, k)[1].sum(axis=1) for _, rows in self.blocks(sample)]
        return float(np.median(np.concatenate(masses))) or 1.0
