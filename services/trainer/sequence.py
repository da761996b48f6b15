"""What people interact with next: a directed item-neighbour table from interaction order.

For every user, each product is paired with the `window` products they interacted with after it,
the pair weighing 1 / distance. Column sums are damped by (count + 1) ** -popularity_damping so
that blockbusters do not follow everything. Each row keeps its top `neighbours_per_item`.

Input is two aligned arrays sorted by user, then time: no per-user Python lists. Pairs at each
distance are one vectorised slice of those arrays, summed into one sparse matrix, so memory is
O(distinct pairs) (at most z * window for z interactions) whatever the number of products.
"""
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from services.trainer.topk import sparse_rows_top_k
from shared.neighbours import NeighbourTable


@dataclass(frozen=True)
class SequenceConfig:
    window: int = 10
    popularity_damping: float = 0.3
    neighbours_per_item: int = 200


def build_next_neighbours(user: np.ndarray, product: np.ndarray, products: int,
                          config: SequenceConfig = SequenceConfig()) -> NeighbourTable:
    """Next-product table from interactions sorted by user, then time: codes in [0, products)."""
    pairs = sp.csr_matrix((products, products), dtype=np.float32)
    for distance in range(1, config.window + 1):
        same_user = user[distance:] == user[:-distance]
        before, after = product[:-distance][same_user], product[distance:][same_user]
        distinct = before != after
        if not distinct.any():
            continue
        weight = np.full(int(distinct.sum()), 1.0 / distance, dtype=np.float32)
        pairs = pairs + sp.csr_matrix((weight, (before[distinct], after[distinct])), shape=(products, products))
        del same_user, before, after, distinct, weight
    if pairs.nnz == 0:
        return NeighbourTable.empty(products, config.neighbours_per_item)
    damping = (np.bincount(pairs.indices, pairs.data, minlength=products) + 1.0) ** -config.popularity_damping
    pairs.data *= damping[pairs.indices].astype(np.float32)
    index, weight = sparse_rows_top_k(pairs, config.neighbours_per_item)
    return NeighbourTable(index, weight)
