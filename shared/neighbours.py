"""The collaborative model as the trainer stores it and the api applies it.

Two neighbour tables over one product vocabulary: `similar` (people who liked i also liked j) and
`next` (what people went on to after i), and each product's popularity. The trainer keeps each
product's WIDTH strongest neighbours and stores the whole model as one row of packed arrays per
tenant (`collaborative_models`, migrations 0008 and 0009). An api process loads that row once per training run and
keeps it in memory (`services.api.neighbours`), so a request reads its history's neighbour rows
with numpy instead of fetching and decoding thousands of (id, weight) pairs.
"""
from dataclasses import dataclass, field
from itertools import compress, repeat

import asyncpg
import numpy as np

WIDTH = 50  # neighbours kept per product: the strongest, in descending weight
KINDS = ("similar", "next")


@dataclass(frozen=True)
class NeighbourTable:
    """A table as the trainer builds it: row i holds product i's neighbours."""

    index: np.ndarray  # (items, K) int32 product codes, -1 where a row has fewer
    weight: np.ndarray  # (items, K) float32, descending within a row, 0 where index is -1

    @classmethod
    def empty(cls, items: int, k: int) -> "NeighbourTable":
        return cls(np.full((items, k), -1, dtype=np.int32), np.zeros((items, k), dtype=np.float32))

    def row(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """(neighbour codes, weights) of one item, without the empty slots."""
        keep = self.index[item] >= 0
        return self.index[item][keep], self.weight[item][keep]

    def filled_rows(self) -> np.ndarray:
        """Codes of the items that have at least one neighbour."""
        return np.flatnonzero(self.index[:, 0] >= 0)


@dataclass(frozen=True)
class NeighbourRows:
    """The rows of some history products, flattened: pair i links `row_ids[row[i]]` to the product
    coded `neighbour[i]` (`CollaborativeModel.product_ids` turns codes back into product ids)."""

    row_ids: list[str] = field(default_factory=list)
    row: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    neighbour: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    weight: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))


@dataclass(frozen=True)
class Packed:
    """A table's filled rows only: `rows` (ascending product codes) and their neighbours."""

    rows: np.ndarray  # (n,) int32
    neighbours: np.ndarray  # (n, width) int32, -1 padding
    weights: np.ndarray  # (n, width) float32

    @classmethod
    def of(cls, table: NeighbourTable, width: int = WIDTH) -> "Packed":
        filled = table.filled_rows().astype(np.int32)
        return cls(filled, np.ascontiguousarray(table.index[filled, :width], dtype=np.int32),
                   np.ascontiguousarray(table.weight[filled, :width], dtype=np.float32))


@dataclass(frozen=True)
class CollaborativeModel:
    run_id: int  # the training run that stored it
    product_ids: np.ndarray  # object: code -> product id
    tables: dict[str, Packed]
    popularity: np.ndarray  # float32 per code, in [0, 1] (shared.interactions.popularity); 0: none
    code_of: dict[str, int] = field(init=False, repr=False, compare=False)
    popular: np.ndarray = field(init=False, repr=False, compare=False)  # codes scoring > 0, most popular first
    row_of: dict[str, np.ndarray] = field(init=False, repr=False, compare=False)  # per table: code -> its row, -1: none

    def __post_init__(self) -> None:
        object.__setattr__(self, "code_of", {pid: code for code, pid in enumerate(self.product_ids.tolist())})
        row_of = {}
        for kind, table in self.tables.items():
            row_of[kind] = np.full(len(self.product_ids) + 1, -1, dtype=np.int32)  # the last: unknown products
            row_of[kind][table.rows] = np.arange(len(table.rows))
        object.__setattr__(self, "row_of", row_of)
        scored = np.flatnonzero(self.popularity > 0)
        order = np.lexsort((self.product_ids[scored].astype(str), -self.popularity[scored]))  # ties by id
        object.__setattr__(self, "popular", scored[order])

    @classmethod
    def of_pairs(cls, run_id: int, tables: dict[str, dict[str, list[tuple[str, float]]]],
                 popularity: dict[str, float] | None = None) -> "CollaborativeModel":
        """From `{kind: {product id: [(neighbour id, weight), ...]}}`, strongest first, and
        `{product id: popularity}` (tests, small data)."""
        popularity = popularity or {}
        names = sorted({pid for rows in tables.values() for pid, pairs in rows.items()}
                       | {n for rows in tables.values() for pairs in rows.values() for n, _ in pairs} | set(popularity))
        code = {pid: i for i, pid in enumerate(names)}
        packed = {}
        for kind in KINDS:
            table = NeighbourTable.empty(len(names), max([len(p) for p in tables.get(kind, {}).values()] + [1]))
            for pid, pairs in tables.get(kind, {}).items():
                table.index[code[pid], :len(pairs)] = [code[n] for n, _ in pairs]
                table.weight[code[pid], :len(pairs)] = [w for _, w in pairs]
            packed[kind] = Packed.of(table)
        return cls(run_id, np.array(names, dtype=object), packed,
                   np.array([popularity.get(pid, 0.0) for pid in names], dtype=np.float32))

    def most_popular(self, count: int, excluded: set[str]) -> np.ndarray:
        """Codes of the `count` most popular products not in `excluded`, most popular first."""
        found: list[np.ndarray] = []
        start, window, total = 0, count + 32, 0
        while total < count and start < len(self.popular):  # the excluded push some out: look further
            top = self.popular[start:start + window]
            found.append(top[~self.named_in(top, excluded)])
            start, window, total = start + window, window * 2, total + len(found[-1])
        return np.concatenate(found)[:count] if found else np.zeros(0, dtype=np.int64)

    def named_in(self, codes: np.ndarray, product_ids: set[str]) -> np.ndarray:
        """Whether each code's product is one of `product_ids`."""
        return np.fromiter(map(product_ids.__contains__, self.product_ids[codes].tolist()), dtype=bool,
                           count=len(codes))

    def codes(self, product_ids: list[str]) -> np.ndarray:
        """Each product's code; -1 for a product the model does not know."""
        return np.fromiter(map(self.code_of.get, product_ids, repeat(-1)), dtype=np.int64, count=len(product_ids))

    def rows(self, kind: str, product_ids: list[str]) -> NeighbourRows:
        """The rows of `product_ids` (those that have one), in that order."""
        table = self.tables[kind]
        codes = self.codes(product_ids)
        at = self.row_of[kind][codes]  # an unknown product's code, -1, reads the last entry: -1
        found = at >= 0
        at = at[found]
        neighbours, weights = table.neighbours[at], table.weights[at]
        filled = neighbours >= 0
        row = np.repeat(np.arange(len(at)), filled.sum(axis=1))
        return NeighbourRows(list(compress(product_ids, found.tolist())), row, neighbours[filled], weights[filled])

    def neighbours(self, kind: str, product_id: str) -> list[tuple[str, float]]:
        """One product's (neighbour id, weight) pairs, strongest first; empty when it has no row."""
        rows = self.rows(kind, [product_id])
        return list(zip(self.product_ids[rows.neighbour].tolist(), rows.weight.tolist()))


SAVE = """
INSERT INTO collaborative_models (tenant_id, run_id, product_ids, width, similar_rows, similar_neighbours,
                                  similar_weights, next_rows, next_neighbours, next_weights, popularity)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (tenant_id) DO UPDATE SET run_id = EXCLUDED.run_id, product_ids = EXCLUDED.product_ids,
    width = EXCLUDED.width, similar_rows = EXCLUDED.similar_rows, similar_neighbours = EXCLUDED.similar_neighbours,
    similar_weights = EXCLUDED.similar_weights, next_rows = EXCLUDED.next_rows,
    next_neighbours = EXCLUDED.next_neighbours, next_weights = EXCLUDED.next_weights, popularity = EXCLUDED.popularity
"""


def _bytes(array: np.ndarray, dtype: str) -> bytes:
    return np.ascontiguousarray(array, dtype=dtype).tobytes()


async def save(conn: asyncpg.Connection, tenant_id: str, model: CollaborativeModel) -> None:
    """Store (replace) the tenant's model."""
    width = max(t.neighbours.shape[1] for t in model.tables.values())
    parts = []
    for kind in KINDS:
        table = model.tables[kind]
        neighbours = np.full((len(table.rows), width), -1, dtype=np.int32)
        weights = np.zeros((len(table.rows), width), dtype=np.float32)
        neighbours[:, :table.neighbours.shape[1]], weights[:, :table.weights.shape[1]] = table.neighbours, table.weights
        parts += [_bytes(table.rows, "<i4"), _bytes(neighbours, "<i4"), _bytes(weights, "<f4")]
    await conn.execute(SAVE, tenant_id, model.run_id, model.product_ids.tolist(), width, *parts,
                       _bytes(model.popularity, "<f4"))


async def load(conn: asyncpg.Connection, tenant_id: str) -> CollaborativeModel | None:
    """The tenant's stored model, or None before its first training run."""
    row = await conn.fetchrow("SELECT * FROM collaborative_models WHERE tenant_id = $1", tenant_id)
    if row is None:
        return None
    width = row["width"]
    tables = {kind: Packed(np.frombuffer(row[f"{kind}_rows"], dtype="<i4"),
                           np.frombuffer(row[f"{kind}_neighbours"], dtype="<i4").reshape(-1, width),
                           np.frombuffer(row[f"{kind}_weights"], dtype="<f4").reshape(-1, width))
              for kind in KINDS}
    return CollaborativeModel(row["run_id"], np.array(row["product_ids"], dtype=object), tables,
                              np.frombuffer(row["popularity"], dtype="<f4"))
