"""Interactions from PostgreSQL straight into numpy arrays: one binary COPY, no Python object per row.

In one repeatable-read snapshot, users and products are numbered in temporary tables, and
`COPY (SELECT user code, product code, type code, value, epoch seconds, id ...) TO STDOUT (FORMAT binary)`
streams fixed-width rows that are parsed a chunk at a time into preallocated arrays, then sorted by
user, time and id with numpy (faster than PostgreSQL's sort, which spills to disk at this size).
At 10M interactions the arrays take about 250 MB; the product ids are the only Python list.
"""
from dataclasses import dataclass

import asyncpg
import numpy as np

from shared.interactions import TYPES, training_weights
SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
# Each row: field count, then (length, value) per field, all big-endian and never NULL.
ROW = np.dtype([("fields", ">i2"), ("l0", ">i4"), ("user", ">i4"), ("l1", ">i4"), ("product", ">i4"),
                ("l2", ">i4"), ("type", ">i2"), ("l3", ">i4"), ("value", ">f4"), ("l4", ">i4"), ("time", ">f8"),
                ("l5", ">i4"), ("id", ">i8")])

NUMBER = """
CREATE TEMPORARY TABLE {name} ON COMMIT DROP AS
SELECT {column} AS id, (row_number() OVER (ORDER BY {column}) - 1)::int4 AS code
FROM (SELECT DISTINCT {column} FROM interactions WHERE tenant_id = $1 AND id <= $2) AS d
"""
ROWS = """
SELECT u.code, p.code, (array_position($3::text[], i.type) - 1)::int2, coalesce(i.value, 'NaN')::float4,
       extract(epoch FROM i.occurred_at)::float8, i.id
FROM interactions i JOIN train_users u ON u.id = i.user_id JOIN train_products p ON p.id = i.product_id
WHERE i.tenant_id = $1 AND i.id <= $2
"""


@dataclass(frozen=True)
class Interactions:
    """A tenant's interactions sorted by user, then time; users and products as codes."""
    product_ids: list[str]  # code -> product id
    users: int
    user: np.ndarray  # int32
    product: np.ndarray  # int32
    weight: np.ndarray  # float32, shared.interactions.training_weights of each interaction
    time_s: np.ndarray  # float64, unix seconds
    last_id: int  # the highest interaction id included

    def __len__(self) -> int:
        return len(self.user)


def weights_of(types: np.ndarray, values: np.ndarray) -> np.ndarray:
    """shared.interactions.training_weights of (type code into TYPES, value) pairs, computed once for
    each distinct pair: millions of interactions hold a few dozen distinct pairs."""
    keys = (types.astype(np.int64) << 32) | values.astype(np.float32).view(np.uint32).astype(np.int64)
    distinct, inverse = np.unique(keys, return_inverse=True)
    stars = (distinct & 0xFFFFFFFF).astype(np.uint32).view(np.float32)
    return training_weights(distinct >> 32, stars).astype(np.float32)[inverse.ravel()]


class _RowReader:
    """Consumes binary COPY output chunk by chunk into preallocated column arrays."""

    def __init__(self, rows: int):
        self.columns = {name: np.empty(rows, dtype=dtype) for name, dtype in
                        (("user", np.int32), ("product", np.int32), ("type", np.int8), ("value", np.float32),
                         ("time", np.float64), ("id", np.int64))}
        self.filled = 0
        self.pending = b""
        self.header_done = False

    async def feed(self, chunk: bytes) -> None:
        data = self.pending + chunk
        offset = 0
        if not self.header_done:
            if len(data) < 19:
                self.pending = data
                return
            if not data.startswith(SIGNATURE):
                raise ValueError("not a binary COPY stream")
            offset = 19 + int.from_bytes(data[15:19], "big")
            self.header_done = True
        whole = min((len(data) - offset) // ROW.itemsize, len(self.columns["user"]) - self.filled)
        rows = np.frombuffer(data, dtype=ROW, count=whole, offset=offset)
        for name, column in self.columns.items():
            column[self.filled:self.filled + whole] = rows[name]
        self.filled += whole
        self.pending = data[offset + whole * ROW.itemsize:]


async def load_interactions(conn: asyncpg.Connection, tenant_id: str) -> Interactions:
    """Every interaction of the tenant up to the newest id, as one consistent snapshot."""
    async with conn.transaction(isolation="repeatable_read"):
        last_id, count = await conn.fetchrow(
            "SELECT coalesce(max(id), 0), count(*) FROM interactions WHERE tenant_id = $1", tenant_id)
        await conn.execute(NUMBER.format(name="train_users", column="user_id"), tenant_id, last_id)
        await conn.execute(NUMBER.format(name="train_products", column="product_id"), tenant_id, last_id)
        await conn.execute("ANALYZE train_users; ANALYZE train_products")
        users = await conn.fetchval("SELECT count(*) FROM train_users")
        product_ids = [r["id"] for r in await conn.fetch("SELECT id FROM train_products ORDER BY code")]
        reader = _RowReader(count)
        await conn.copy_from_query(ROWS, tenant_id, last_id, list(TYPES), output=reader.feed, format="binary")
    if reader.filled != count:
        raise RuntimeError(f"expected {count} interactions, read {reader.filled}")
    columns = reader.columns
    order = np.lexsort((columns.pop("id"), columns["time"], columns["user"]))  # by user, time, id
    for name in columns:
        columns[name] = columns[name][order]
    del order
    weight = weights_of(columns.pop("type"), columns.pop("value"))
    return Interactions(product_ids, users, columns["user"], columns["product"], weight, columns["time"], last_id)
