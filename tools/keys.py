"""`recommender keys create|list|revoke`: API keys of tenants, straight in the database.

    recommender keys create --tenant acme --role read [--name LABEL]   prints only the key on stdout
    recommender keys list [--tenant acme]                            id, tenant, role, label, dates
    recommender keys revoke KEY_ID                                   stops working within KEY_CACHE_S

The database: DATABASE_URL when set, else the one the native `make up` runs (PG_PORT, as `make train`).
"""
import argparse
import asyncio
import json
import os
import re
import sys
from pathlib import Path

import asyncpg

from shared import keys
from shared.logs import redact
from shared.schemas import ID_PATTERN


def database_url() -> str:
    if url := os.environ.get("DATABASE_URL"):
        return url
    from tools.stack import Config

    return Config.from_env().database_url


def _tenant(value: str) -> str:
    if not re.fullmatch(ID_PATTERN, value):
        raise argparse.ArgumentTypeError("1-128 characters: letters, digits and . _ : - (not first)")
    return value


async def _create(conn: asyncpg.Connection, args: argparse.Namespace) -> int:
    async with conn.transaction():
        created = await keys.ensure_tenant(conn, args.tenant)
        key_id, key = await keys.create_key(conn, args.tenant, args.role, args.name or "")
    print(f"{'created tenant ' + args.tenant + '; ' if created else ''}key {key_id} ({args.role}) for tenant"
          f" {args.tenant}: shown once below, only its hash is stored", file=sys.stderr)
    print(key)
    return 0


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


async def _list(conn: asyncpg.Connection, args: argparse.Namespace) -> int:
    rows = await keys.list_keys(conn, args.tenant)
    print(f"{'ID':<13} {'TENANT':<20} {'ROLE':<6} {'LABEL':<20} {'CREATED':<20} {'LAST USED':<20} REVOKED")
    for row in rows:
        print(f"{row['id']:<13} {row['tenant_id']:<20} {row['role']:<6} {row['label'] or '-':<20}"
              f" {_when(row['created_at']):<20} {_when(row['last_used_at']):<20} {_when(row['revoked_at'])}")
    print(f"{len(rows)} key(s)", file=sys.stderr)
    return 0


async def _revoke(conn: asyncpg.Connection, args: argparse.Namespace) -> int:
    revoked_at = await keys.revoke_key(conn, args.key_id)
    if revoked_at is None:
        print(f"error: no key {args.key_id!r} (see `recommender keys list`)", file=sys.stderr)
        return 1
    print(f"key {args.key_id} revoked at {_when(revoked_at)} UTC; running services refuse it within seconds",
          file=sys.stderr)
    return 0


async def _run(args: argparse.Namespace) -> int:
    url = database_url()
    try:
        conn = await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"error: cannot reach the database at {redact(url)} ({exc}); is the stack up (`make up`),"
              " or is DATABASE_URL right?", file=sys.stderr)
        return 2
    try:
        return await args.action(conn, args)
    except asyncpg.UndefinedTableError:
        print("error: the database has no api_keys table: run `make migrate` first", file=sys.stderr)
        return 2
    finally:
        await conn.close()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recommender keys", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(required=True)
    create = sub.add_parser("create", help="create a key (and its tenant if needed); prints only the key")
    create.add_argument("--tenant", required=True, type=_tenant)
    create.add_argument("--role", required=True, choices=keys.ROLES)
    create.add_argument("--name", help="a label to recognise the key by")
    create.set_defaults(action=_create)
    listing = sub.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--tenant", type=_tenant)
    listing.set_defaults(action=_list)
    revoke = sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(action=_revoke)
    return p


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(_run(parser().parse_args(argv)))


async def demo_keys(url: str, tenant_id: str, path: Path) -> dict[str, str]:
    """The demo tenant's read and write keys: those saved in `path` while still valid, else new ones
    (saved there, readable by the owner only). For `make up`'s demo mode."""
    saved = json.loads(path.read_text()) if path.exists() else {}
    conn = await asyncpg.connect(url)
    try:
        found = {}
        for role in ("read", "write"):
            key = saved.get(role, "")
            key_id = keys.key_id_of(key)
            row = key_id and await conn.fetchrow(
                "SELECT tenant_id, role FROM api_keys WHERE id = $1 AND key_hash = $2 AND revoked_at IS NULL",
                key_id, keys.key_hash(key))
            if row and row["tenant_id"] == tenant_id and row["role"] == role:
                found[role] = key
            else:
                found[role] = (await keys.create_key(conn, tenant_id, role, f"demo {role} (make up)"))[1]
    finally:
        await conn.close()
    if found != saved:
        path.touch(mode=0o600)
        path.write_text(json.dumps(found))
    return found


if __name__ == "__main__":
    raise SystemExit(main())
