"""`make chaos PRODUCTS=N`: post N products through HTTP at full speed while embedder workers are
SIGKILLed and restarted, RabbitMQ is restarted once and PostgreSQL once; then drain, check the
database, print a table and write chaos.json. Exit 1 unless lost = duplicated = dead_lettered = 0.

Everything runs privately: its own run directory (default .chaos/), a private RabbitMQ node and
PostgreSQL on free ports, its own queue prefix; a user's `.run/` stack and the shared broker are
never touched. The schedule is printed first: each event fires once a given share of the
catalogue is embedded, so it always lands on work in flight (the report says how much was pending).
"""
import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import time
import uuid
from pathlib import Path

import asyncpg

from shared import localpg
from shared.keys import create_key
from shared.migrate import migrate
from tools import procs, rabbitnode
from tools.chaos.load import LoadResult, catalogue, post_all
from tools.chaos.report import check, print_table


def schedule(kills: int) -> list[tuple[float, str]]:
    """(share of the catalogue embedded, action), in order."""
    events = [(round(0.05 + 0.8 * i / max(1, kills - 1), 3) if kills > 1 else 0.1, "kill_worker") for i in range(kills)]
    # The database first: a broker restart blocks longest (the node starts slowly) and workers keep
    # embedding what they hold meanwhile, so an event after it could find nothing left in flight.
    events += [(0.3, "restart_database"), (0.55, "restart_broker")]
    return sorted(events)


class Chaos:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.run_dir = Path(args.run_dir).resolve()
        self.run_id = uuid.uuid4().hex[:8]
        self.prefix = f"chaos-{self.run_id}"
        self.pgdata = self.run_dir / "pg"
        self.pg_port = localpg.free_port()
        self.database_url = ""
        self.rabbit = rabbitnode.RabbitNode(self.run_dir / "rabbitmq", name=f"chaos-{self.run_id}")
        self.ingest: procs.Record | None = None
        self.workers: list[procs.Record] = []
        self.spawned = 0
        self.events: list[dict] = []
        self.embedded_now = 0
        self.crashes: list[str] = []
        self.key = ""  # a write key of the run's tenant

    def env(self) -> dict:
        return {"DATABASE_URL": self.database_url, "AMQP_URL": self.rabbit.url, "AMQP_PREFIX": self.prefix,
                "LOG_JSON": "true", "MAX_BACKLOG": str(self.args.max_backlog), "HOST": "127.0.0.1",
                "RATE_LIMIT_PER_S": "100000", "RATE_LIMIT_BURST": "100000",
                # Batches well under the catalogue, so each scheduled event finds work in flight.
                "BATCH_SIZE": "32"}

    def start_worker(self) -> procs.Record:
        self.spawned += 1
        port = localpg.free_port()
        record = procs.spawn(self.run_dir, f"embedder-{self.spawned}", "services.embedder", port,
                             {**self.env(), "HEALTH_PORT": str(port)})
        self.workers.append(record)
        return record

    def start(self) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.run_dir.mkdir(parents=True)
        self.database_url = localpg.start(self.pgdata, self.pg_port)
        asyncio.run(migrate(self.database_url))
        self.key = asyncio.run(self._write_key())
        self.rabbit.start()
        port = localpg.free_port()
        self.ingest = procs.spawn(self.run_dir, "ingest", "services.ingest", port, {**self.env(), "PORT": str(port)},
                                  url=f"http://127.0.0.1:{port}")
        for _ in range(self.args.workers):
            self.start_worker()
        procs.wait_ready([self.ingest, *self.workers], timeout_s=300)

    async def _write_key(self) -> str:
        conn = await asyncpg.connect(self.database_url)
        try:
            return (await create_key(conn, "chaos", "write", "make chaos"))[1]
        finally:
            await conn.close()

    def stop(self) -> None:
        for record in procs.records(self.run_dir):
            procs.stop(self.run_dir, record, timeout_s=30)
        self.rabbit.stop()
        localpg.stop(self.pgdata)

    async def watch_progress(self, ids_prefix: str, stop: asyncio.Event) -> None:
        """Keep `embedded_now` current (the last value read while the database is down)."""
        while not stop.is_set():
            try:
                conn = await asyncpg.connect(self.database_url, timeout=2)
                try:
                    while not stop.is_set():
                        self.embedded_now = await conn.fetchval(
                            "SELECT count(*) FROM product_vectors WHERE product_id LIKE $1", ids_prefix + "-%")
                        await asyncio.sleep(0.5)
                finally:
                    await conn.close()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError):
                await asyncio.sleep(0.5)

    async def supervise(self, stop: asyncio.Event) -> None:
        """Like a process supervisor: a worker that exited on its own (a bug: it should ride out
        anything this run does) is counted and replaced."""
        while not stop.is_set():
            for worker in list(self.workers):
                if not procs.alive(worker):
                    self.crashes.append(worker.name)
                    print(f"  {worker.name} exited on its own (see {worker.log}); starting a replacement", flush=True)
                    self.workers.remove(worker)
                    self.start_worker()
            await asyncio.sleep(1)

    async def run_events(self, load: LoadResult, started: float, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for share, action in schedule(self.args.kills):
            while self.embedded_now < share * self.args.products:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{action} never became due: {self.embedded_now} embedded")
                await asyncio.sleep(0.2)
            event = {"action": action, "at_s": round(time.monotonic() - started, 1), "embedded": self.embedded_now,
                     "pending": len(load.accepted) - self.embedded_now}
            print(f"  t={event['at_s']:>6.1f}s  {action:<17} ({event['embedded']} embedded, {event['pending']} "
                  "accepted and still pending)", flush=True)
            if action == "kill_worker":
                await self.kill_worker()
            elif action == "restart_broker":
                event["down_s"] = await asyncio.to_thread(self._down, self.rabbit.stop, self.rabbit.start)
            else:
                event["down_s"] = await asyncio.to_thread(
                    self._down, lambda: localpg.stop(self.pgdata), lambda: localpg.start(self.pgdata, self.pg_port))
            self.events.append(event)

    def _down(self, stop, start) -> float:
        """Stop, stay down at least `down_s`, start; the seconds it was down."""
        stop()
        went_down = time.monotonic()
        time.sleep(self.args.down_s)
        start()
        return round(time.monotonic() - went_down, 1)

    async def kill_worker(self) -> None:
        """SIGKILL a worker that is consuming (ready), then start a replacement."""
        while not (ready := [w for w in self.workers if procs.alive(w) and await asyncio.to_thread(procs.ready, w)]):
            await asyncio.sleep(0.2)
        victim = ready[0]
        self.workers.remove(victim)  # before the kill: the supervisor must not count it as a crash
        os.killpg(victim.pid, signal.SIGKILL)
        while procs.alive(victim):
            await asyncio.sleep(0.05)
        self.start_worker()

    async def drive(self) -> dict:
        products = catalogue(self.prefix, self.args.products)
        print(f"schedule ({self.args.products} products, {self.args.workers} workers, outages of "
              f"{self.args.down_s:.0f}s):", flush=True)
        for share, action in schedule(self.args.kills):
            print(f"  at {share:>4.0%} embedded: {action}")
        started = time.monotonic()
        stop = asyncio.Event()
        watcher = asyncio.create_task(self.watch_progress(self.prefix, stop))
        supervisor = asyncio.create_task(self.supervise(stop))
        load = LoadResult()
        events = asyncio.create_task(self.run_events(load, started, self.args.timeout_s))
        await post_all(self.ingest.url, products, self.key, result=load)
        print(f"  t={time.monotonic() - started:>6.1f}s  all {len(load.accepted)} products accepted", flush=True)
        await events
        drain_deadline = time.monotonic() + self.args.timeout_s
        report = await check(self.database_url, self.prefix, load)
        while report["embedded"] + report["dead_lettered"] < report["accepted"] and time.monotonic() < drain_deadline:
            await asyncio.sleep(1)
            report = await check(self.database_url, self.prefix, load)
        stop.set()
        await watcher
        await supervisor
        report.update(worker_kills=sum(e["action"] == "kill_worker" for e in self.events),
                      broker_restarts=sum(e["action"] == "restart_broker" for e in self.events),
                      database_restarts=sum(e["action"] == "restart_database" for e in self.events),
                      seconds=round(time.monotonic() - started, 1), worker_crashes=len(self.crashes), products=self.args.products,
                      workers=self.args.workers, max_backlog=self.args.max_backlog, events=self.events)
        return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="make chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--products", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--kills", type=int, default=5, help="worker SIGKILLs (each followed by a replacement)")
    p.add_argument("--down-s", type=float, default=12.0, help="seconds RabbitMQ and PostgreSQL stay down")
    p.add_argument("--max-backlog", type=int, default=2000, help="ingest's MAX_BACKLOG during the run")
    p.add_argument("--timeout-s", type=float, default=1800, help="give up waiting for events / the drain")
    p.add_argument("--run-dir", default=".chaos")
    p.add_argument("--output", default="chaos.json")
    args = p.parse_args(argv)
    if not rabbitnode.available():
        raise SystemExit("make chaos needs rabbitmq-server installed (it runs a private node on free ports)")
    chaos = Chaos(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop what was started, also on SIGTERM
    try:
        chaos.start()
        report = asyncio.run(chaos.drive())
    finally:
        chaos.stop()
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    ok = report["lost"] == report["duplicated"] == report["dead_lettered"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
