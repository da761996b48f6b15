"""`recommender keys create|list|revoke` against DATABASE_URL, as a user runs them."""
import os
import subprocess
import sys
import uuid

from shared import keys
from tests.processes import ROOT


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.cli", "keys", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "DATABASE_URL": database_url}, timeout=60)


async def test_create_prints_only_the_key_list_never_shows_it_revoke_stops_it(database_url, pool):
    tenant = f"acme-{uuid.uuid4().hex[:6]}"
    created = cli(database_url, "create", "--tenant", tenant, "--role", "read", "--name", "web page")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert created.stdout == key + "\n" and keys.key_id_of(key), "stdout holds the key and nothing else"
    assert f"created tenant {tenant}" in created.stderr and key not in created.stderr
    assert await pool.fetchval("SELECT count(*) FROM tenants WHERE id = $1", tenant) == 1
    record = await keys.lookup(pool, key)
    assert (record.tenant_id, record.role) == (tenant, "read")

    second = cli(database_url, "create", "--tenant", tenant, "--role", "write")
    assert second.returncode == 0 and "created tenant" not in second.stderr

    listed = cli(database_url, "list", "--tenant", tenant)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:4] == ["ID", "TENANT", "ROLE", "LABEL"] and len(lines) == 3
    key_id = keys.key_id_of(key)
    assert key_id in listed.stdout and "web page" in listed.stdout and "rk_" not in listed.stdout
    row = next(line for line in lines if line.startswith(key_id))
    assert row.split()[-1] == "-", "not revoked yet"  # last used is set, revoked is not

    revoked = cli(database_url, "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert await keys.lookup(pool, key) is None
    assert cli(database_url, "revoke", "000000000000").returncode == 1
    assert cli(database_url, "create", "--tenant", "bad/name", "--role", "read").returncode == 2
    assert cli(database_url, "create", "--tenant", tenant, "--role", "owner").returncode == 2
