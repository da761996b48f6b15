"""`make up` in Docker mode: `python -m tools.dockerstack up`.

`docker compose up -d --build --wait`, then, in demo mode (MODE, default demo as for the native
stack), the demo tenant's read and write keys: made (or, when still valid, kept) by a one-shot
`python` in the api container, which has the keys code and the database's address; saved on this
side in `<RUN_DIR>/demo-keys-<compose project>.json` (owner only) and printed. The api's web page
gets the read key (PAGE_KEY; the api is recreated when it changes). When the demo tenant has no
products, the demo catalogue is loaded through the published ingest port with the write key.
"""
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from shared.settings import default_embedder_workers
from tools.demo import load_demo

# Runs in the api container: keys saved earlier come on stdin, the valid ones (or new ones) and
# the demo tenant's product count go out as JSON.
IN_CONTAINER = """
import asyncio, json, os, sys, tempfile
from pathlib import Path
import asyncpg
from tools.keys import demo_keys

async def main():
    tenant, url = os.environ.get("DEMO_TENANT", "demo"), os.environ["DATABASE_URL"]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "keys.json")
        path.write_text(sys.stdin.read() or "{}")
        keys = await demo_keys(url, tenant, path)
    conn = await asyncpg.connect(url)
    try:
        products = await conn.fetchval("SELECT count(*) FROM products WHERE tenant_id = $1", tenant)
    finally:
        await conn.close()
    print(json.dumps({"keys": keys, "products": products}))

asyncio.run(main())
"""


def compose(*args: str, env: dict, **kwargs) -> subprocess.CompletedProcess:
    command = os.environ.get("COMPOSE", "docker compose").split()
    return subprocess.run([*command, *args], env=env, check=True, **kwargs)


def keys_file(env: dict) -> Path:
    project = env.get("COMPOSE_PROJECT_NAME", "recommender")
    return Path(env.get("RUN_DIR", ".run")) / f"demo-keys-{project}.json"


def up() -> int:
    env = {"EMBEDDER_WORKERS": str(default_embedder_workers()), **os.environ, "MODE": os.environ.get("MODE", "demo")}
    saved_file = keys_file(env)
    saved = json.loads(saved_file.read_text()) if saved_file.exists() else {}
    if env["MODE"] == "demo" and saved.get("read"):
        env["PAGE_KEY"] = saved["read"]
    try:
        compose("up", "-d", "--build", "--wait", env=env)
    except subprocess.CalledProcessError:
        print("make up: docker compose failed; where Docker Hub cannot be reached, make images-offline builds"
              " the base images locally", file=sys.stderr)
        return 1
    api_url = f"http://127.0.0.1:{env.get('API_PORT', '8383')}"
    ingest_url = f"http://127.0.0.1:{env.get('INGEST_PORT', '8384')}"
    if env["MODE"] == "demo":
        answer = json.loads(compose("exec", "-T", "api", "python", "-c", IN_CONTAINER, env=env, text=True,
                                    input=json.dumps(saved), capture_output=True).stdout)
        keys = answer["keys"]
        if keys != saved:
            saved_file.parent.mkdir(parents=True, exist_ok=True)
            saved_file.touch(mode=0o600)
            saved_file.write_text(json.dumps(keys))
        if env.get("PAGE_KEY") != keys["read"]:  # the web page's key: the api starts again with it
            compose("up", "-d", "--wait", "api", env={**env, "PAGE_KEY": keys["read"]})
        if answer["products"] == 0:
            counts = asyncio.run(load_demo(ingest_url, api_url, keys["write"]))
            print(f"demo loaded: {counts}")
        print(f"DEMO MODE, tenant {env.get('DEMO_TENANT', 'demo')!r}: web page {api_url}/\n"
              f"  read key  {keys['read']}\n  write key {keys['write']}\n  (saved in {saved_file}; other tenants"
              " and keys: docker compose exec api python -m tools.keys create --tenant NAME --role read|write|admin)")
    print(f"api {api_url}  ingest {ingest_url}  rabbitmq http://127.0.0.1:{env.get('RABBITMQ_UI_PORT', '15672')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["up"]:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    return up()


if __name__ == "__main__":
    raise SystemExit(main())
