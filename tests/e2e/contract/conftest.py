"""Ingest and api as processes of their own, for a tenant of their own, on the stack's database and
broker: the contract tests may write anything there. Their queue has no consumer (the fuzzer's
products would keep the stack's workers busy) and is deleted at the end."""
import uuid
from dataclasses import dataclass

import pytest

from shared import localpg
from shared.amqp import Topology
from tests.conftest import _delete_topology
from tests.processes import spawn, wait_ready


@dataclass
class Services:
    tenant_id: str
    ingest_url: str
    api_url: str

    def url(self, service: str) -> str:
        return self.ingest_url if service == "ingest" else self.api_url


@pytest.fixture(scope="session")
async def contract_services(stack, pool, amqp_url) -> Services:
    tenant_id = f"contract-{uuid.uuid4().hex[:8]}"
    await pool.execute("INSERT INTO tenants (id) VALUES ($1)", tenant_id)
    env = {**stack.env, "TENANT_ID": tenant_id, "AMQP_PREFIX": tenant_id}
    ingest_port, api_port = localpg.free_port(), localpg.free_port()
    services = Services(tenant_id, f"http://127.0.0.1:{ingest_port}", f"http://127.0.0.1:{api_port}")
    processes = [
        spawn("contract-ingest", "services.ingest", {**env, "PORT": str(ingest_port)}, stack.log_dir,
              f"{services.ingest_url}/health/ready"),
        spawn("contract-api", "services.api", {**env, "PORT": str(api_port)}, stack.log_dir,
              f"{services.api_url}/health/ready"),
    ]
    try:
        for process in processes:
            wait_ready(process)
        yield services
    finally:
        for process in processes:
            process.terminate()
        await _delete_topology(amqp_url, Topology(tenant_id))
