"""The running stack for end-to-end tests: ingest, api and two embedder workers as processes,
started once per session (each worker loads the model, which takes seconds). `stack.keys` are the
session tenant's keys; the request rate limit is raised so polling loops never meet it (the
rate-limit test gives its own tenant a low one)."""
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from shared import localpg
from tests.conftest import TenantKeys
from tests.processes import Process, spawn, wait_ready


@dataclass
class Stack:
    env: dict
    log_dir: Path
    ingest_url: str
    api_url: str
    keys: TenantKeys
    workers: list[Process] = field(default_factory=list)
    processes: list[Process] = field(default_factory=list)

    def start_worker(self, name: str) -> Process:
        port = localpg.free_port()
        worker = spawn(name, "services.embedder", {**self.env, "HEALTH_PORT": str(port), "BATCH_SIZE": "16"},
                       self.log_dir, f"http://127.0.0.1:{port}/health/ready")
        self.workers.append(worker)
        self.processes.append(worker)
        return worker


@pytest.fixture(scope="session")
def stack(database_url: str, amqp_url: str, amqp_prefix: str, tenant_keys: TenantKeys) -> Stack:
    log_dir = Path(tempfile.mkdtemp(prefix="recommender-e2e-logs-"))
    # Workers load models other than the default from here on first use (test_model_switch puts one there).
    env = {"DATABASE_URL": database_url, "AMQP_URL": amqp_url, "AMQP_PREFIX": amqp_prefix,
           "MODELS_DIR": str(log_dir / "models"), "RATE_LIMIT_PER_S": "5000", "RATE_LIMIT_BURST": "5000"}
    ingest_port, api_port = localpg.free_port(), localpg.free_port()
    stack = Stack(env, log_dir, f"http://127.0.0.1:{ingest_port}", f"http://127.0.0.1:{api_port}", tenant_keys)
    stack.processes.append(spawn("ingest", "services.ingest", {**env, "PORT": str(ingest_port)}, log_dir,
                                 f"{stack.ingest_url}/health/ready"))
    stack.processes.append(spawn("api", "services.api", {**env, "PORT": str(api_port)}, log_dir,
                                 f"{stack.api_url}/health/ready"))
    stack.start_worker("embedder-1")
    stack.start_worker("embedder-2")
    try:
        for process in stack.processes:
            wait_ready(process)
        yield stack
    finally:
        for process in stack.processes:
            process.terminate()


# The web page in a real browser: Debian's chromium, driven by Playwright, at phone width.
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]


@pytest.fixture
async def page():
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: `make test` installs it (apt-get install chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield await browser.new_page(viewport={"width": 390, "height": 844})
        finally:
            await browser.close()
