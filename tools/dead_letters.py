"""`recommender dead-letters list|requeue|drop`: the messages the embedder gave up on.

    list [--tenant T] [--limit N] [--json]   id, tenant, product, reason, attempts, when
    requeue (--all [--tenant T] | ID...)     publish them again (after a fix), then forget them
    drop (--all [--tenant T] | ID...)        forget them; their products stay `failed`

Reads DATABASE_URL, AMQP_URL and AMQP_PREFIX like the services (for the native stack:
`env $(python -m tools.stack env) recommender dead-letters list`).
"""
import argparse
import asyncio
import json
import sys

import aio_pika
import asyncpg

from shared import dead_letters
from shared.amqp import ROUTING_KEY, Topology, declare
from shared.dead_letters import DeadLetter
from shared.settings import Settings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recommender dead-letters", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", help="show dead letters, oldest first")
    listing.add_argument("--tenant")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    for name, text in (("requeue", "publish again, then forget"), ("drop", "forget without publishing")):
        action = sub.add_parser(name, help=text)
        action.add_argument("ids", nargs="*", type=int, metavar="ID")
        action.add_argument("--all", action="store_true", help="every dead letter (of --tenant, when given)")
        action.add_argument("--tenant")
    return p


async def _selected(conn: asyncpg.Connection, args: argparse.Namespace) -> list[DeadLetter]:
    if args.all == bool(args.ids):
        raise SystemExit("name the dead letters by ID, or pass --all (not both)")
    rows = await dead_letters.list_(conn, args.tenant, ids=None if args.all else args.ids)
    missing = set(args.ids) - {row.id for row in rows}
    if missing:
        raise SystemExit(f"no dead letter with id {', '.join(map(str, sorted(missing)))}")
    return rows


async def _requeue(settings: Settings, conn: asyncpg.Connection, rows: list[DeadLetter]) -> int:
    """Publish each (confirmed by the broker) and only then forget it: none is lost on the way."""
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange, _ = await declare(channel, Topology(settings.amqp_prefix))
        for row in rows:
            await exchange.publish(
                aio_pika.Message(row.body, content_type="application/json", message_id=row.message_id,
                                 delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=ROUTING_KEY, mandatory=True,
            )
            await dead_letters.delete(conn, [row.id])
    return len(rows)


def _line(row: DeadLetter) -> str:
    when = row.dead_lettered_at.strftime("%Y-%m-%d %H:%M:%S") if row.dead_lettered_at else ""
    return f"{row.id:>6}  {row.tenant_id or '-':<12} {row.product_id or '-':<24} {row.attempts:>3}  {when}  {row.reason}"


async def run(args: argparse.Namespace, settings: Settings) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        if args.action == "list":
            rows = await dead_letters.list_(conn, args.tenant, args.limit)
            if args.json:
                for row in rows:
                    print(json.dumps({"id": row.id, "message_id": row.message_id, "tenant": row.tenant_id,
                                      "product_id": row.product_id, "reason": row.reason, "attempts": row.attempts,
                                      "dead_lettered_at": row.dead_lettered_at.isoformat()}))
            else:
                print(f"{'id':>6}  {'tenant':<12} {'product':<24} {'try':>3}  {'when (UTC)':<19}  reason")
                for row in rows:
                    print(_line(row))
                print(f"{len(rows)} of {await dead_letters.count(conn)} dead letter(s)", file=sys.stderr)
            return 0
        rows = await _selected(conn, args)
        if args.action == "requeue":
            print(f"requeued {await _requeue(settings, conn, rows)} dead letter(s)")
        else:
            print(f"dropped {await dead_letters.delete(conn, [row.id for row in rows])} dead letter(s)")
        return 0
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return asyncio.run(run(args, Settings()))


if __name__ == "__main__":
    raise SystemExit(main())
