"""`recommender reembed --model NAME`: move a tenant to another embedding model without downtime.

1. The model becomes the tenant's *pending* model (shared.models): from then on the embedder
   workers embed every product write with the active model and the pending one.
2. Every live product without a vector of the new model for its current text is published to the
   same queue the ingest service uses, and the same workers embed it (they load the model on first
   use from MODELS_DIR/NAME). The api keeps answering from the active model meanwhile.
3. When no live product lacks the new vector, the switch is one UPDATE: requests that start after
   it use the new model, requests already running finish with the old one.
4. After `--grace-s` the old model's vectors of the tenant are deleted (`--keep-old`: kept until
   `recommender reembed --drop OLD`).

Stopping it (Ctrl-C, a crash) loses nothing: run the same command again and it publishes only what
is still missing. Exit status 0 once switched, 1 when `--timeout-s` passed first.
"""
import argparse
import asyncio
import json
import sys
import time

import aio_pika
import asyncpg

from shared import models
from shared.amqp import ROUTING_KEY, Topology, amqp_message, connect, declare
from shared.db import create_pool
from shared.schemas import ProductIn, ProductMessage
from shared.settings import Settings
from tools.progress import Progress

PUBLISH_BATCH = 500
RESEND_S = 300.0  # publish a product again when its vector is still missing after this long
POLL_S = 1.0


async def publish_products(conn: asyncpg.Connection, exchange: aio_pika.abc.AbstractExchange, tenant_id: str,
                           product_ids: list[str]) -> None:
    """Publish the stored products again, at their stored version (a no-op write for the catalogue)."""
    rows = await conn.fetch("SELECT id, title, description, genres, year, metadata, version FROM products"
                            " WHERE tenant_id = $1 AND id = ANY($2::text[]) AND NOT deleted", tenant_id, product_ids)
    messages = [ProductMessage(type="product.upsert", tenant_id=tenant_id, product_id=row["id"], version=row["version"],
                               product=ProductIn(id=row["id"], title=row["title"], description=row["description"],
                                                 genres=list(row["genres"]), year=row["year"],
                                                 metadata=json.loads(row["metadata"])))
                for row in rows]
    await asyncio.gather(*(exchange.publish(amqp_message(m), routing_key=ROUTING_KEY, mandatory=True)
                           for m in messages))


async def fill(pool: asyncpg.Pool, exchange, tenant_id: str, model: str, timeout_s: float) -> bool:
    """Publish what lacks a vector of `model` until nothing does; False on timeout."""
    async with pool.acquire() as conn:
        total = await conn.fetchval("SELECT count(*) FROM products WHERE tenant_id = $1 AND NOT deleted", tenant_id)
    progress = Progress(total, f"{tenant_id}: vectors of {model}")
    sent: dict[str, float] = {}
    deadline, stalled_since, last_missing = time.monotonic() + timeout_s, time.monotonic(), None
    try:
        while True:
            async with pool.acquire() as conn:
                missing = await models.missing_vectors(conn, tenant_id, model)
                progress.update(total - len(missing) - progress.done)
                if not missing:
                    return True
                now = time.monotonic()
                due = [pid for pid in missing if now - sent.get(pid, -RESEND_S) >= RESEND_S]
                for start in range(0, len(due), PUBLISH_BATCH):
                    await publish_products(conn, exchange, tenant_id, due[start:start + PUBLISH_BATCH])
                sent.update(dict.fromkeys(due, now))
            if len(missing) != last_missing:
                last_missing, stalled_since = len(missing), now
            elif now - stalled_since > 60:
                print(f"\nno progress for a minute: can the embedder workers load {model!r}"
                      f" (MODELS_DIR/{model})? their logs say", file=sys.stderr)
                stalled_since = now
            if now > deadline:
                return False
            await asyncio.sleep(POLL_S)
    finally:
        progress.close()


async def reembed(settings: Settings, tenant_id: str, model: str, keep_old: bool, grace_s: float,
                  timeout_s: float) -> int:
    pool = await create_pool(settings)
    connection = await connect(settings.amqp_url)
    try:
        exchange, _ = await declare(await connection.channel(), Topology(settings.amqp_prefix))
        async with pool.acquire() as conn:
            try:
                state = await models.set_pending(conn, tenant_id, model, settings.model_name)
            except asyncpg.ForeignKeyViolationError:
                print(f"no tenant {tenant_id!r}", file=sys.stderr)
                return 2
        if state.pending is None:
            print(f"tenant {tenant_id} already uses {model}")
            return 0
        print(f"tenant {tenant_id}: preparing {model} (requests use {state.active} until the switch)")
        while True:
            if not await fill(pool, exchange, tenant_id, model, timeout_s):
                print("timed out; run the same command again to resume", file=sys.stderr)
                return 1
            async with pool.acquire() as conn:
                old = await models.switch(conn, tenant_id, model)
            if old is not None:
                break  # else a product arrived or changed since the last look: fill again
        print(f"tenant {tenant_id} switched from {old} to {model}")
        if not keep_old:
            await asyncio.sleep(grace_s)  # requests that started before the switch finish with the old vectors
            async with pool.acquire() as conn:
                dropped = await models.drop_vectors(conn, tenant_id, old, settings.model_name)
            print(f"dropped {dropped} vectors of {old}")
        return 0
    finally:
        await connection.close()
        await pool.close()


async def drop(settings: Settings, tenant_id: str, model: str) -> int:
    pool = await create_pool(settings)
    try:
        async with pool.acquire() as conn:
            dropped = await models.drop_vectors(conn, tenant_id, model, settings.model_name)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        await pool.close()
    print(f"dropped {dropped} vectors of {model}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recommender reembed", description=__doc__.splitlines()[0].split(": ", 1)[1])
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--model", help="the model to move to (MODELS_DIR/NAME on the workers, or the packaged one)")
    action.add_argument("--drop", metavar="MODEL", help="delete the tenant's vectors of a model it no longer uses")
    p.add_argument("--tenant", required=True, help="the tenant to move (see `recommender keys list`)")
    p.add_argument("--keep-old", action="store_true", help="keep the old model's vectors after the switch")
    p.add_argument("--grace-s", type=float, default=10.0, help="wait this long after the switch before dropping")
    p.add_argument("--timeout-s", type=float, default=6 * 3600.0, help="give up (resumable) after this long")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings()
    tenant_id = args.tenant
    if args.drop:
        return asyncio.run(drop(settings, tenant_id, args.drop))
    if not models.MODEL_NAME.match(args.model):
        print(f"{args.model!r} is not a valid model name (letters, digits, . _ -)", file=sys.stderr)
        return 2
    try:
        return asyncio.run(reembed(settings, tenant_id, args.model, args.keep_old, args.grace_s, args.timeout_s))
    except KeyboardInterrupt:
        print("\nstopped; run the same command again to resume", file=sys.stderr)
        return 130
