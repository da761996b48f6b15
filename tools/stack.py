"""The native stack, for machines without a Docker engine: `python -m tools.stack up|down|ps|logs|env|empty`.

`up` starts the embedded PostgreSQL + pgvector (data under `<RUN_DIR>/pg`, kept across restarts),
makes sure RabbitMQ answers at AMQP_URL (starting a local `rabbitmq-server` when installed),
migrates, starts ingest, api and EMBEDDER_WORKERS embedder workers in the background and returns
once every one is ready. A second `up` starts only what is not running. The stack runs in demo
mode (MODE, default demo): tenant `demo` with a read and a write key, kept in `<RUN_DIR>/demo-keys.json`
and printed with the URLs; the web page carries the read key. MODE=production starts no demo keys. `down` stops exactly what
`up` recorded, then the database (and RabbitMQ when `up` started it).

Environment (defaults): RUN_DIR (.run), PG_PORT (5433), API_PORT (8383), INGEST_PORT (8384),
EMBEDDER_HEALTH_PORT (8385; worker i listens on it + i - 1), EMBEDDER_WORKERS (two per core), STACK_HOST
(127.0.0.1), READY_TIMEOUT_S (300), STOP_TIMEOUT_S (60); AMQP_URL, AMQP_PREFIX and the other
service settings are passed through.
"""
import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from shared import localpg
from shared.logs import redact
from shared.migrate import migrate
from shared.settings import Settings, default_embedder_workers
from tools import procs
from tools.keys import demo_keys


@dataclass(frozen=True)
class Config:
    run_dir: Path
    pg_port: int
    api_port: int
    ingest_port: int
    embedder_port: int
    trainer_port: int
    workers: int
    host: str
    ready_timeout_s: float
    stop_timeout_s: float
    amqp_url: str
    amqp_prefix: str
    mode: str
    demo_tenant: str

    @classmethod
    def from_env(cls) -> "Config":
        env = os.environ.get
        settings = Settings()
        return cls(
            run_dir=Path(env("RUN_DIR", ".run")).resolve(),
            pg_port=int(env("PG_PORT", "5433")),
            api_port=int(env("API_PORT", "8383")),
            ingest_port=int(env("INGEST_PORT", "8384")),
            embedder_port=int(env("EMBEDDER_HEALTH_PORT", "8385")),
            trainer_port=int(env("TRAINER_HEALTH_PORT", "8382")),
            workers=int(env("EMBEDDER_WORKERS", str(default_embedder_workers()))),
            host=env("STACK_HOST", "127.0.0.1"),
            ready_timeout_s=float(env("READY_TIMEOUT_S", "300")),
            stop_timeout_s=float(env("STOP_TIMEOUT_S", "60")),
            amqp_url=settings.amqp_url,
            amqp_prefix=settings.amqp_prefix,
            mode=env("MODE", "demo"),
            demo_tenant=env("DEMO_TENANT", "demo"),
        )

    @property
    def pgdata(self) -> Path:
        return self.run_dir / "pg"

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres"

    @property
    def keys_file(self) -> Path:
        return self.run_dir / "demo-keys.json"

    def demo_keys(self) -> dict[str, str]:
        """The demo tenant's {"read", "write"} keys `up` made; empty outside demo mode or before `up`."""
        if self.mode != "demo" or not self.keys_file.exists():
            return {}
        return json.loads(self.keys_file.read_text())

    @property
    def rabbitmq_marker(self) -> Path:
        return self.run_dir / "rabbitmq.started"

    def urls(self) -> dict[str, str]:
        return {"API_URL": f"http://127.0.0.1:{self.api_port}", "INGEST_URL": f"http://127.0.0.1:{self.ingest_port}"}


class StackError(RuntimeError):
    """Something the person running the stack has to fix; the message says what."""


def _ensure_rabbitmq(config: Config) -> None:
    parts = urlsplit(config.amqp_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5672
    if procs.port_open(port, host):
        return
    if host not in ("127.0.0.1", "localhost") or shutil.which("rabbitmq-server") is None:
        raise StackError(
            f"RabbitMQ does not answer at {redact(config.amqp_url)}. Start one (Debian: `apt-get install"
            " rabbitmq-server`, then `rabbitmq-server -detached`), point AMQP_URL at a running broker,"
            " or run `make up` where a Docker engine answers."
        )
    print("starting the local rabbitmq-server ...", flush=True)
    subprocess.run(["rabbitmq-server", "-detached"], check=True)
    config.rabbitmq_marker.write_text("started by make up\n")
    deadline = time.monotonic() + 90
    while not procs.port_open(port, host):
        if time.monotonic() > deadline:
            raise StackError("rabbitmq-server did not listen within 90s: see its logs under /var/log/rabbitmq")
        time.sleep(1)


def _ensure_postgres(config: Config) -> None:
    if localpg.is_running(config.pgdata):
        return
    if procs.port_open(config.pg_port):
        raise StackError(f"port {config.pg_port} is taken by another program: set PG_PORT to a free port")
    print(f"starting PostgreSQL on port {config.pg_port} (data in {config.pgdata}) ...", flush=True)
    localpg.start(config.pgdata, config.pg_port)


def _service_env(config: Config) -> dict:
    return {"DATABASE_URL": config.database_url, "AMQP_URL": config.amqp_url, "AMQP_PREFIX": config.amqp_prefix,
            "HOST": config.host, "LOG_JSON": "true", "MODE": config.mode, "DEMO_TENANT": config.demo_tenant}


def _planned(config: Config) -> list[tuple[str, str, int, dict, str]]:
    """(name, module, port, extra env, url) of every service process."""
    urls = config.urls()
    page_key = {"PAGE_KEY": config.demo_keys()["read"]} if config.demo_keys() else {}
    planned = [("ingest", "services.ingest", config.ingest_port, {"PORT": str(config.ingest_port)}, urls["INGEST_URL"]),
               ("api", "services.api", config.api_port, {"PORT": str(config.api_port), **page_key}, urls["API_URL"])]
    planned.append(("trainer", "services.trainer", config.trainer_port, {"HEALTH_PORT": str(config.trainer_port)},
                    f"http://127.0.0.1:{config.trainer_port}/health/ready"))
    for index in range(config.workers):
        port = config.embedder_port + index
        # EMBEDDER_WORKERS: each worker's encode takes its share of the cores (unless ENCODE_THREADS is set)
        planned.append((f"embedder-{index + 1}", "services.embedder", port,
                        {"HEALTH_PORT": str(port), "EMBEDDER_WORKERS": str(config.workers)},
                        f"http://127.0.0.1:{port}/metrics"))
    return planned


def up(config: Config) -> None:
    config.run_dir.mkdir(parents=True, exist_ok=True)
    _ensure_rabbitmq(config)
    _ensure_postgres(config)
    asyncio.run(migrate(config.database_url))
    if config.mode == "demo":
        asyncio.run(demo_keys(config.database_url, config.demo_tenant, config.keys_file))
    running = {record.name: record for record in procs.records(config.run_dir) if procs.alive(record)}
    started = []
    for name, module, port, env, url in _planned(config):
        if name in running:
            continue
        if procs.port_open(port):
            raise StackError(f"port {port} for {name} is taken by another program: choose others with"
                             " API_PORT, INGEST_PORT or EMBEDDER_HEALTH_PORT (then `make down` and `make up`)")
        started.append(procs.spawn(config.run_dir, name, module, port, {**_service_env(config), **env}, url=url))
    print(f"started {len(started)} process(es), {len(running)} already running; waiting until ready ...",
          flush=True)
    procs.wait_ready(started + list(running.values()), config.ready_timeout_s)
    ps(config)
    if keys := config.demo_keys():
        print(f"DEMO MODE, tenant {config.demo_tenant!r}: web page {config.urls()['API_URL']}/\n"
              f"  read key  {keys['read']}\n  write key {keys['write']}\n"
              "  (other tenants and keys: `recommender keys create --tenant NAME --role read|write|admin`)")


def down(config: Config) -> None:
    for record in procs.records(config.run_dir):
        procs.stop(config.run_dir, record, config.stop_timeout_s)
        print(f"stopped {record.name} (pid {record.pid})")
    if localpg.is_running(config.pgdata):
        localpg.stop(config.pgdata)
        print("stopped PostgreSQL")
    if config.rabbitmq_marker.exists():
        subprocess.run(["rabbitmqctl", "shutdown"], check=False)
        config.rabbitmq_marker.unlink()
        print("stopped the rabbitmq-server that `make up` had started")


def ps(config: Config) -> None:
    pg_state = "running" if localpg.is_running(config.pgdata) else "stopped"
    print(f"{'postgres':<12} {pg_state:<9} {config.database_url}")
    print(f"{'rabbitmq':<12} {'up' if _rabbitmq_answers(config) else 'down':<9} {redact(config.amqp_url)}")
    for record in procs.records(config.run_dir):
        state = ("ready" if procs.ready(record) else "starting") if procs.alive(record) else "exited"
        print(f"{record.name:<12} {state:<9} {record.url:<32} pid {record.pid}  log {record.log}")


def _rabbitmq_answers(config: Config) -> bool:
    parts = urlsplit(config.amqp_url)
    return procs.port_open(parts.port or 5672, parts.hostname or "127.0.0.1")


def logs(config: Config, follow: bool) -> None:
    files = sorted(str(path) for path in (config.run_dir / "logs").glob("*.log"))
    if not files:
        raise StackError(f"no logs under {config.run_dir / 'logs'}: run `make up` first")
    os.execvp("tail", ["tail", "-n", "50", *(["-F"] if follow else []), *files])


async def _product_count(config: Config) -> int:
    conn = await asyncpg.connect(config.database_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM products WHERE tenant_id = $1", config.demo_tenant)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down", "ps", "logs", "env", "empty"])
    parser.add_argument("--no-follow", action="store_true", help="logs: print the last lines and return")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", "XDG_RUNTIME_DIR")  # the embedded server's helper library, harmless
    config = Config.from_env()
    try:
        if args.action == "up":
            up(config)
        elif args.action == "down":
            down(config)
        elif args.action == "ps":
            ps(config)
        elif args.action == "logs":
            logs(config, follow=not args.no_follow)
        elif args.action == "env":  # for `make demo` after `make up`
            key_env = {"RECOMMENDER_KEY": config.demo_keys()["write"]} if config.demo_keys() else {}
            for key, value in {**config.urls(), "DATABASE_URL": config.database_url, **key_env}.items():
                print(f"{key}={value}")
        else:  # exit 0 when the catalogue is empty: `make up` then loads the demo
            raise SystemExit(0 if asyncio.run(_product_count(config)) == 0 else 1)
    except (StackError, TimeoutError, RuntimeError, OSError, asyncpg.PostgresError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
