"""`make up` without Docker: the embedded database, the services and the demo in the background,
in demo mode (demo keys printed, the page carries the read key, the spike routes open); a second
`make up` changes nothing; `make down` leaves no process and no port behind.

Runs with its own RUN_DIR, ports and queue prefix, so it never touches a developer's `.run/`."""
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from shared import localpg
from shared.amqp import Topology
from tests.conftest import _delete_topology
from tests.processes import ROOT
from tools import procs

DEMO_DATA = ROOT / "tools" / "demo_data" / "movies.json"


def free_port_pair() -> int:
    """A port whose successor is free too (two embedder workers)."""
    for _ in range(50):
        port = localpg.free_port()
        if port < 65535 and not procs.port_open(port + 1):
            return port
    raise RuntimeError("no two consecutive free ports")


@pytest.fixture
def stack_env(tmp_path: Path, amqp_url: str) -> dict:
    prefix = f"test-up-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "STACK_MODE": "native", "RUN_DIR": str(tmp_path / "run"), "AMQP_URL": amqp_url,
           "AMQP_PREFIX": prefix, "PG_PORT": str(localpg.free_port()), "API_PORT": str(localpg.free_port()),
           "INGEST_PORT": str(localpg.free_port()), "EMBEDDER_HEALTH_PORT": str(free_port_pair()),
           "TRAINER_HEALTH_PORT": str(localpg.free_port()),
           "EMBEDDER_WORKERS": "2"}
    env.pop("DATABASE_URL", None)
    yield env
    make("down", env)  # also when the test failed half-way
    asyncio.run(_delete_topology(amqp_url, Topology(prefix)))


def make(target: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", target], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def get_json(url: str, key: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
        return json.loads(response.read())


def test_make_up_serves_recommendations_then_make_down_leaves_nothing(stack_env):
    up = make("up", stack_env)
    assert up.returncode == 0, up.stdout + up.stderr
    run_dir = Path(stack_env["RUN_DIR"])
    records = {record.name: record for record in procs.records(run_dir)}
    assert records.keys() == {"ingest", "api", "trainer", "embedder-1", "embedder-2"}
    assert all(procs.alive(record) and procs.ready(record) for record in records.values())
    assert len({record.port for record in records.values()}) == 5
    assert all((run_dir / "logs" / f"{name}.log").exists() for name in records)
    api_url = f"http://127.0.0.1:{stack_env['API_PORT']}"
    assert api_url in up.stdout

    # Demo mode: the demo keys are printed with the URLs, the page carries the read key.
    keys = json.loads((run_dir / "demo-keys.json").read_text())
    assert "DEMO MODE" in up.stdout and keys["read"] in up.stdout and keys["write"] in up.stdout
    with urllib.request.urlopen(f"{api_url}/", timeout=10) as response:
        page = response.read().decode()
    assert f'content="{keys["read"]}"' in page and 'name="recommender-mode" content="demo"' in page
    assert "DEMO MODE" in (run_dir / "logs" / "api.log").read_text()
    # `recommender keys` finds the stack's database with no settings, as `make train` does.
    listed = subprocess.run([sys.executable, "-m", "tools.cli", "keys", "list", "--tenant", "demo"], cwd=ROOT,
                            env=stack_env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert all(key.split("_")[1] in listed.stdout for key in keys.values()) and "rk_" not in listed.stdout

    # The demo catalogue was loaded because the database was empty: a demo user gets recommendations.
    user = json.loads(DEMO_DATA.read_text())["users"][0]
    body = get_json(f"{api_url}/v1/users/{user['id']}/recommendations?limit=5", keys["read"])
    assert len(body["items"]) == 5
    history = set(user["likes"]) | set(user["dislikes"]) | {pid for order in user["orders"] for pid in order["items"]}
    assert not history & {item["product"]["id"] for item in body["items"]}
    assert all(item["reasons"] for item in body["items"])
    assert len(get_json(f"{api_url}/api/products/recommendation?users_id={user['id']}&limit=3")) == 3  # no key
    with pytest.raises(urllib.error.HTTPError) as refused:
        get_json(f"{api_url}/v1/users/{user['id']}/recommendations")
    assert refused.value.code == 401

    again = make("up", stack_env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "started 0 process(es), 5 already running" in again.stdout
    assert keys["read"] in again.stdout, "the same demo keys on every up"
    assert {record.name: record.pid for record in procs.records(run_dir)} == {n: r.pid for n, r in records.items()}

    down = make("down", stack_env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert procs.records(run_dir) == []
    deadline = time.monotonic() + 10
    ports = [record.port for record in records.values()] + [int(stack_env["PG_PORT"])]
    while any(procs.port_open(port) for port in ports) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [port for port in ports if procs.port_open(port)]
    assert not [record.name for record in records.values() if procs.alive(record)]
    assert not localpg.is_running(run_dir / "pg")
    assert (run_dir / "pg" / "PG_VERSION").exists(), "the data stays for the next make up"
