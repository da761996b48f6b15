"""What people interact with next: a directed item-neighbour table from interaction order.

For every user, each product is paired with the `window` products they interacted with after it,
the pair weighing 1 / distance. Column sums are damped by (count + 1) ** -popularity_damping so
that blockbusters do not follow everything. Each row keeps its top `neighbours_per_item`.

Cost: O(z * window) pairs for z interactions, built as one sparse matrix; rows are read out in
sparse form, so memory stays O(z * window) whatever the number of products.
"""
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class SequenceConfig:
    window: int = 10
    popularity_damping: float = 0.3
    neighbours_per_item: int = 200


def build_next_neighbours(sequences: Iterable[Sequence[str]],
                          config: SequenceConfig = SequenceConfig()) -> dict[str, list[tuple[str, float]]]:
    """product -> [(next product, weight), ...] descending, from per-user product sequences in time order."""
    product_index: dict[str, int] = {}
    rows, cols, values = [], [], []
    for sequence in sequences:
        codes = np.array([product_index.setdefault(p, len(product_index)) for p in sequence], dtype=np.int64)
        for distance in range(1, min(config.window, len(codes) - 1) + 1):
            rows.append(codes[:-distance])
            cols.append(codes[distance:])
            values.append(np.full(len(codes) - distance, 1.0 / distance))
    if not rows:
        return {}
    n = len(product_index)
    pairs = sp.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    pairs.setdiag(0)
    pairs.eliminate_zeros()
    damping = (np.asarray(pairs.sum(axis=0)).ravel() + 1.0) ** -config.popularity_damping
    pairs = sp.csr_matrix(pairs.multiply(damping[None, :]))
    products = list(product_index)
    table = {}
    for row in range(n):
        start, stop = pairs.indptr[row], pairs.indptr[row + 1]
        if start == stop:
            continue
        columns, weights = pairs.indices[start:stop], pairs.data[start:stop]
        keep = np.argsort(-weights, kind="stable")[:config.neighbours_per_item]
        table[products[row]] = [(products[columns[i]], float(weights[i])) for i in keep]
    return table
