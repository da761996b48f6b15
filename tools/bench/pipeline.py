"""A throwaway embedding pipeline for the embed part: ingest and N embedder workers as processes.

Its own PostgreSQL, its own queue names on the broker at AMQP_URL (deleted afterwards). `run`
posts texts to ingest as the importer does (500 per request, 2 requests in flight) and returns the
seconds from the first POST until every product has its vector.
"""
import asyncio
import shutil
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import aiohttp
import asyncpg

from shared import localpg
from shared.amqp import Topology, delete_topology
from shared.keys import create_key
from shared.migrate import migrate
from shared.settings import Settings
from tests.processes import Process, spawn, wait_ready

TENANT = "bench-embed"


class Pipeline:
    def __init__(self, backend: str, threads: int = 0, batch_size: int | None = None):
        self.backend = backend
        self.threads = threads
        self.batch_size = batch_size
        self.folder = Path(tempfile.mkdtemp(prefix="recommender-bench-embed-"))
        self.amqp_url = Settings().amqp_url
        self.prefix = f"bench-{uuid.uuid4().hex[:8]}"
        self.database_url = localpg.start(self.folder / "pg", localpg.free_port())
        asyncio.run(migrate(self.database_url))
        self.key = asyncio.run(_write_key(self.database_url))
        self.env = {"DATABASE_URL": self.database_url, "AMQP_URL": self.amqp_url, "AMQP_PREFIX": self.prefix,
                    "ENCODER_BACKEND": backend, "RATE_LIMIT_PER_S": "100000", "RATE_LIMIT_BURST": "100000"}
        port = localpg.free_port()
        self.ingest_url = f"http://127.0.0.1:{port}"
        self.ingest = spawn("ingest", "services.ingest", {**self.env, "PORT": str(port)}, self.folder,
                            f"{self.ingest_url}/health/ready")
        wait_ready(self.ingest)
        self.workers: list[Process] = []
        self.runs = 0

    def start_workers(self, count: int) -> None:
        """Exactly `count` workers, each told how many share the machine (ENCODE_THREADS: cores / count)."""
        self.stop_workers()
        env = {**self.env, "EMBEDDER_WORKERS": str(count), "ENCODE_THREADS": str(self.threads)}
        if self.batch_size:
            env["BATCH_SIZE"] = str(self.batch_size)
        for index in range(count):
            port = localpg.free_port()
            self.workers.append(spawn(f"embedder-{count}-{index + 1}", "services.embedder",
                                      {**env, "HEALTH_PORT": str(port)}, self.folder,
                                      f"http://127.0.0.1:{port}/health/ready"))
        for worker in self.workers:
            wait_ready(worker, timeout_s=300)

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.terminate()
        self.workers = []

    def run(self, texts: list[str], timeout_s: float = 1800) -> tuple[float, float]:
        """Seconds from the first POST of these texts (as new products) until all have vectors, and
        the seconds the workers spent in encode calls meanwhile (summed over the workers)."""
        self.runs += 1
        before = self.encode_seconds()
        wall_s = asyncio.run(self._run([{"id": f"r{self.runs}-{i}", "title": f"Text {i}", "description": text}
                                        for i, text in enumerate(texts)], timeout_s))
        return wall_s, self.encode_seconds() - before

    def encode_seconds(self) -> float:
        """embedder_encode_seconds_sum over the workers (their /metrics)."""
        total = 0.0
        for worker in self.workers:
            with urllib.request.urlopen(worker.health_url.replace("/health/ready", "/metrics"), timeout=10) as answer:
                for line in answer.read().decode().splitlines():
                    if line.startswith("embedder_encode_seconds_sum"):
                        total += float(line.split()[-1])
        return total

    async def _run(self, products: list[dict], timeout_s: float) -> float:
        conn = await asyncpg.connect(self.database_url)
        try:
            started = time.perf_counter()
            limit = asyncio.Semaphore(2)
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.key}"}) as session:
                async def post(batch: list[dict]) -> None:
                    async with limit, session.post(f"{self.ingest_url}/v1/products", json=batch) as response:
                        if response.status != 202:
                            raise RuntimeError(f"ingest answered {response.status}: {(await response.text())[:300]}")

                await asyncio.gather(*(post(products[i:i + 500]) for i in range(0, len(products), 500)))
            # Ask only for the ids still missing: a count over the growing table would load the
            # database the pipeline is measured on.
            missing = [product["id"] for product in products]
            while True:
                stored = {r["product_id"] for r in await conn.fetch(
                    "SELECT product_id FROM product_vectors WHERE tenant_id = $1 AND product_id = ANY($2::text[])",
                    TENANT, missing)}
                missing = [pid for pid in missing if pid not in stored]
                if not missing:
                    break
                if time.perf_counter() - started > timeout_s:
                    raise TimeoutError(f"not every text embedded within {timeout_s}s")
                if dead := [w.name for w in self.workers if w.popen.poll() is not None]:
                    raise RuntimeError(f"{', '.join(dead)} exited: see {self.folder}")
                await asyncio.sleep(0.1)
            return time.perf_counter() - started
        finally:
            await conn.close()

    def close(self) -> None:
        self.stop_workers()
        self.ingest.terminate()
        asyncio.run(delete_topology(self.amqp_url, Topology(self.prefix)))
        localpg.stop(self.folder / "pg")
        shutil.rmtree(self.folder, ignore_errors=True)



async def _write_key(database_url: str) -> str:
    """A write key of the bench's tenant (created with it)."""
    conn = await asyncpg.connect(database_url)
    try:
        return (await create_key(conn, TENANT, "write", "make bench embed"))[1]
    finally:
        await conn.close()
