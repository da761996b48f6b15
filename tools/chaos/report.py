"""What `make chaos` found in the database, and the table it prints."""
import asyncpg

from tools.chaos.load import LoadResult

KEYS = ("accepted", "stored", "embedded", "lost", "duplicated", "dead_lettered", "refused_by_status",
        "worker_kills", "worker_crashes", "broker_restarts", "database_restarts", "seconds")


async def check(database_url: str, prefix: str, load: LoadResult) -> dict:
    """Counts over the accepted products: stored (a live row), embedded (a vector of the current
    content), dead_lettered, lost (accepted but neither embedded nor dead-lettered), duplicated
    (a vector written more than once: embedded twice)."""
    ids = sorted(load.accepted)
    conn = await asyncpg.connect(database_url, timeout=5)
    try:
        row = await conn.fetchrow(
            """
            SELECT count(*) FILTER (WHERE p.id IS NOT NULL AND NOT p.deleted) AS stored,
                   count(*) FILTER (WHERE v.content_hash = p.content_hash) AS embedded,
                   count(*) FILTER (WHERE v.writes > 1) AS duplicated,
                   count(*) FILTER (WHERE v.content_hash IS DISTINCT FROM p.content_hash AND EXISTS (
                       SELECT 1 FROM dead_letters d WHERE d.product_id = a.id)) AS dead_products
            FROM unnest($1::text[]) AS a(id)
            LEFT JOIN products p ON p.id = a.id
            LEFT JOIN product_vectors v ON v.tenant_id = p.tenant_id AND v.product_id = p.id
            """,
            ids,
        )
        # Any dead letter of this run counts, also one whose message named no product.
        dead = await conn.fetchval("SELECT count(*) FROM dead_letters WHERE product_id IS NULL OR product_id LIKE $1",
                                   prefix + "-%")
    finally:
        await conn.close()
    return {
        "accepted": len(ids),
        "stored": row["stored"],
        "embedded": row["embedded"],
        "lost": len(ids) - row["embedded"] - row["dead_products"],
        "duplicated": row["duplicated"],
        "dead_lettered": dead,
        "refused_by_status": dict(sorted(load.refused_by_status.items())),
        "connection_errors": load.connection_errors,
    }


def print_table(report: dict) -> None:
    print()
    print(f"{'make chaos':<20} {'value':>12}")
    print(f"{'-' * 20} {'-' * 12}")
    for key in KEYS:
        value = report[key]
        if isinstance(value, dict):
            value = ", ".join(f"{status}: {n}" for status, n in value.items()) or "none"
        print(f"{key:<20} {value:>12}")
    verdict = "PASS" if report["lost"] == report["duplicated"] == report["dead_lettered"] == 0 else "FAIL"
    print(f"{'verdict':<20} {verdict:>12}")
