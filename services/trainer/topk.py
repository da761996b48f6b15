"""The per-row top-K that fills neighbour tables (shared.neighbours.NeighbourTable) from dense or
sparse rows.

A table is two (items, K) arrays: neighbour codes (int32, -1 where a row has fewer) and weights
(float32, descending within a row). Nothing here holds Python objects per entry, so a table of
100,000 items x 200 neighbours costs 160 MB whatever the number of interactions behind it.
"""
import numpy as np
import scipy.sparse as sp

from shared.neighbours import NeighbourTable

SPARSE_BLOCK_NNZ = 8_000_000  # entries sorted at once by sparse_rows_top_k


def dense_rows_top_k(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of each row's top k positive values, descending (index -1 beyond)."""
    k = min(k, rows.shape[1])
    top = np.argpartition(-rows, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(rows, top, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    top, values = np.take_along_axis(top, order, axis=1), np.take_along_axis(values, order, axis=1)
    return np.where(values > 0, top, -1).astype(np.int32), np.maximum(values, 0).astype(np.float32)


def store_rows(table: NeighbourTable, items: np.ndarray, index: np.ndarray, weight: np.ndarray) -> None:
    k = index.shape[1]
    table.index[items, :k] = index
    table.weight[items, :k] = weight


def sparse_rows_top_k(matrix: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, k) column indices and values of each CSR row's top k positive entries, descending.

    Sorts the stored entries only (never a dense row), in blocks of about SPARSE_BLOCK_NNZ entries.
    """
    matrix = sp.csr_matrix(matrix)
    rows = matrix.shape[0]
    index = np.full((rows, k), -1, dtype=np.int32)
    weight = np.zeros((rows, k), dtype=np.float32)
    indptr = matrix.indptr
    start = 0
    while start < rows:
        stop = int(np.searchsorted(indptr, indptr[start] + SPARSE_BLOCK_NNZ, side="right")) - 1
        stop = min(max(stop, start + 1), rows)
        _block_top_k(matrix.indices[indptr[start]:indptr[stop]], matrix.data[indptr[start]:indptr[stop]],
                     indptr[start:stop + 1] - indptr[start], index[start:stop], weight[start:stop])
        start = stop
    return index, weight


def _block_top_k(columns: np.ndarray, values: np.ndarray, indptr: np.ndarray,
                 index: np.ndarray, weight: np.ndarray) -> None:
    lengths = np.diff(indptr)
    row_of = np.repeat(np.arange(len(lengths)), lengths)
    # By row, then descending value, with one float64 key (one argsort is ~3x faster than lexsort):
    # the row in the integer part, the value in (0, 1). Values closer than ~1e-10 of the row's
    # largest may swap places; nothing else can.
    top = np.maximum(values.max(initial=0.0), np.finfo(np.float32).tiny) * np.float32(1.001)
    order = np.argsort(row_of + (1.0 - np.maximum(values, 0).astype(np.float64) / top) * 0.5)
    rank = np.arange(len(order)) - np.repeat(indptr[:-1], lengths)  # position within the row, after sorting
    keep = (rank < index.shape[1]) & (values[order] > 0)
    kept = order[keep]
    index[row_of[kept], rank[keep]] = columns[kept]
    weight[row_of[kept], rank[keep]] = values[kept]
