"""API keys: made, stored (as hashes only), looked up, listed and revoked.

A key reads `rk_<id>_<secret>`: `rk_` makes it recognisable (secret scanners, logs), `<id>` is the
public key id (12 hex digits) that `recommender keys list|revoke` show, `<secret>` is 256 random
bits. The database keeps only the SHA-256 of the whole key; a lookup fetches the row by id and
compares hashes in constant time, so neither the index nor the comparison leaks timing.
"""
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

ROLES = ("read", "write", "admin")  # each includes what the ones before it may do
PREFIX = "rk_"
KEY_PATTERN = re.compile(r"rk_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class KeyRecord:
    """What a valid key grants, with its tenant's overrides (None: the service's default)."""

    key_id: str
    tenant_id: str
    role: str
    rate_per_s: float | None = None
    rate_burst: int | None = None
    catalogue_quota: int | None = None

    def allows(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def new_key() -> tuple[str, str]:
    """(key id, key)."""
    key_id = secrets.token_hex(6)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(key: str) -> str | None:
    """The id inside a well-formed key, else None."""
    match = KEY_PATTERN.fullmatch(key)
    return match.group(1) if match else None


async def ensure_tenant(conn: asyncpg.Connection, tenant_id: str) -> bool:
    """Create the tenant if it does not exist; True when created now."""
    status = await conn.execute("INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING", tenant_id)
    return status.endswith(" 1")


async def create_key(conn: asyncpg.Connection, tenant_id: str, role: str, label: str = "") -> tuple[str, str]:
    """A new key of `role` for the tenant (created if needed); returns (key id, key), the only time
    the key exists outside the caller."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    await ensure_tenant(conn, tenant_id)
    key_id, key = new_key()
    await conn.execute(
        "INSERT INTO api_keys (id, tenant_id, role, label, key_hash) VALUES ($1, $2, $3, $4, $5)",
        key_id, tenant_id, role, label, key_hash(key),
    )
    return key_id, key


async def list_keys(conn: asyncpg.Connection, tenant_id: str | None = None) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, tenant_id, role, label, created_at, last_used_at, revoked_at FROM api_keys"
        " WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY tenant_id, created_at, id",
        tenant_id,
    )


async def revoke_key(conn: asyncpg.Connection, key_id: str) -> datetime | None:
    """Revoke the key; returns when it was revoked (earlier, if it already was), None if unknown."""
    return await conn.fetchval(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING revoked_at", key_id
    )


LOOKUP = """
SELECT k.tenant_id, k.role, k.key_hash, t.rate_per_s, t.rate_burst, t.catalogue_quota
FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
WHERE k.id = $1 AND k.revoked_at IS NULL
"""


async def lookup(pool: asyncpg.Pool, key: str) -> KeyRecord | None:
    """What the key grants, or None when it is malformed, unknown or revoked. Records the use."""
    key_id = key_id_of(key)
    if key_id is None:
        return None
    row = await pool.fetchrow(LOOKUP, key_id)
    if row is None or not hmac.compare_digest(bytes(row["key_hash"]), key_hash(key)):
        return None
    await pool.execute("UPDATE api_keys SET last_used_at = now() WHERE id = $1", key_id)
    return KeyRecord(key_id, row["tenant_id"], row["role"], row["rate_per_s"], row["rate_burst"],
                     row["catalogue_quota"])


async def tenant_record(pool: asyncpg.Pool, tenant_id: str) -> KeyRecord | None:
    """A read grant for the tenant itself (demo mode's keyless spike routes), with its overrides."""
    row = await pool.fetchrow("SELECT rate_per_s, rate_burst, catalogue_quota FROM tenants WHERE id = $1", tenant_id)
    if row is None:
        return None
    return KeyRecord(f"tenant:{tenant_id}", tenant_id, "read", row["rate_per_s"], row["rate_burst"],
                     row["catalogue_quota"])
