"""Embedding models in the database: their dimension, their HNSW index, and each tenant's switch.

A tenant's requests use its `active` model (no `tenant_models` row: the services' MODEL_NAME).
`recommender reembed` sets a `pending` model; from then on workers embed every product write with
both models, and the reembed tool fills in the rest through the queue. `switch` makes the pending
model active in one UPDATE once every live product has its vector. Vectors of any dimension share
product_vectors.embedding; each model has a partial HNSW index on embedding::vector(D) (migration
0007), which queries use by ordering on `order_expression(D)` and filtering on the model.
"""
import re
from dataclasses import dataclass

import asyncpg

from shared.errors import PermanentError


MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # also a safe folder name


class ModelMismatch(PermanentError):
    """A model name is registered with another dimension than the model now produces."""


@dataclass(frozen=True)
class TenantModels:
    active: str
    pending: str | None

    @property
    def wanted(self) -> list[str]:
        """Every model a product write must be embedded with right now."""
        return [self.active] + ([self.pending] if self.pending else [])


# The HNSW graph (migration 0010). Built with ef_construction 128 instead of pgvector's 64, it finds
# more of the exact 10 nearest at a given ef_search: at 100,000 products, for five-interest queries,
# 0.985 at 40 against 0.934; for today's three-interest queries 0.967 at 80 (EF_SEARCH), where the
# old graph needed 100 for 0.97 of the five-interest ones. Building takes about 1.4 times as long.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 128


def order_expression(column: str, dimension: int) -> str:
    """The expression the model's HNSW index is built on (`int` keeps the SQL text safe)."""
    return f"({column}::vector({int(dimension)}))"


async def register(conn: asyncpg.Connection, model: str, dimension: int) -> None:
    """Record the model's dimension (first use) and make sure its HNSW index exists. Workers loading
    the same model at once take turns (an advisory lock), so only one of them creates the index."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"embedding_models:{model}")
        stored = await conn.fetchval(
            "INSERT INTO embedding_models (name, dimension) VALUES ($1, $2)"
            " ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING dimension", model, dimension)
        if stored != dimension:
            raise ModelMismatch(f"model {model!r} makes {dimension}-d vectors but was registered with {stored}:"
                                " give the new model its own name and run `recommender reembed --model NAME`")
        await ensure_index(conn, model, dimension)


async def ensure_index(conn: asyncpg.Connection, model: str, dimension: int, concurrently: bool = False) -> None:
    """Create the model's HNSW index if it is missing (`concurrently`: without blocking writes;
    only outside a transaction)."""
    if await conn.fetchval("SELECT to_regclass(embedding_index_name($1)) IS NOT NULL", model):
        return
    template = (f"CREATE INDEX {'CONCURRENTLY ' if concurrently else ''}IF NOT EXISTS %I ON product_vectors"
                f" USING hnsw ({order_expression('embedding', dimension)} vector_cosine_ops)"
                f" WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) WHERE model = %L")
    # format() on the server quotes the index name (%I) and the model (%L); the dimension is an int.
    statement = await conn.fetchval("SELECT format($1::text, embedding_index_name($2), $2::text)", template, model)
    await conn.execute(statement)


async def dimension(conn: asyncpg.Connection, model: str) -> int | None:
    return await conn.fetchval("SELECT dimension FROM embedding_models WHERE name = $1", model)


async def tenant_models(conn: asyncpg.Connection, tenant_ids: list[str], default: str) -> dict[str, TenantModels]:
    """Each tenant's active and pending model."""
    rows = await conn.fetch("SELECT tenant_id, active, pending FROM tenant_models WHERE tenant_id = ANY($1::text[])",
                            tenant_ids)
    found = {row["tenant_id"]: TenantModels(row["active"], row["pending"]) for row in rows}
    return {tenant_id: found.get(tenant_id, TenantModels(default, None)) for tenant_id in tenant_ids}


async def active_model(conn: asyncpg.Connection, tenant_id: str, default: str) -> tuple[str, int | None]:
    """(the model the tenant's requests use, its dimension), in one query."""
    row = await conn.fetchrow(
        "SELECT m.name, m.dimension FROM (SELECT coalesce((SELECT active FROM tenant_models WHERE tenant_id = $1),"
        " $2) AS name) a LEFT JOIN embedding_models m ON m.name = a.name", tenant_id, default)
    return (row["name"] or default), row["dimension"]


async def set_pending(conn: asyncpg.Connection, tenant_id: str, model: str, default: str) -> TenantModels:
    """Start (or resume) preparing `model` for the tenant; returns the tenant's models after."""
    row = await conn.fetchrow(
        "INSERT INTO tenant_models AS t (tenant_id, active, pending) VALUES ($1, $2, nullif($3, $2))"
        " ON CONFLICT (tenant_id) DO UPDATE SET pending = nullif($3, t.active) RETURNING active, pending",
        tenant_id, default, model)
    return TenantModels(row["active"], row["pending"])


async def missing_vectors(conn: asyncpg.Connection, tenant_id: str, model: str, limit: int | None = None) -> list[str]:
    """Live products without a vector of `model` for their current text."""
    rows = await conn.fetch(
        "SELECT p.id FROM products p WHERE p.tenant_id = $1 AND NOT p.deleted AND NOT EXISTS ("
        " SELECT 1 FROM product_vectors v WHERE v.tenant_id = p.tenant_id AND v.product_id = p.id AND v.model = $2"
        " AND v.content_hash = p.content_hash) ORDER BY p.id LIMIT $3", tenant_id, model, limit)
    return [row["id"] for row in rows]


async def switch(conn: asyncpg.Connection, tenant_id: str, model: str) -> str | None:
    """Make the pending `model` active if every live product has its vector; returns the model
    active before, or None (nothing switched: not pending, or vectors still missing)."""
    async with conn.transaction():
        row = await conn.fetchrow("SELECT active, pending FROM tenant_models WHERE tenant_id = $1 FOR UPDATE",
                                  tenant_id)
        if row is None or row["pending"] != model or await missing_vectors(conn, tenant_id, model, 1):
            return None
        await conn.execute("UPDATE tenant_models SET active = pending, pending = NULL, switched_at = now()"
                           " WHERE tenant_id = $1", tenant_id)
        return row["active"]


async def drop_vectors(conn: asyncpg.Connection, tenant_id: str, model: str, default: str) -> int:
    """Delete the tenant's vectors of a model it neither uses nor prepares; returns how many."""
    if model in (await tenant_models(conn, [tenant_id], default))[tenant_id].wanted:
        raise ValueError(f"model {model!r} is in use by tenant {tenant_id!r}")
    status = await conn.execute("DELETE FROM product_vectors WHERE tenant_id = $1 AND model = $2", tenant_id, model)
    return int(status.split()[-1])
