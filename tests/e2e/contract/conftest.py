"""Ingest and api as processes of their own, with the keys of a tenant of their own (the api's page
carries its read key), on the stack's database and broker: the contract tests may write anything there. Their queue has no consumer (the fuzzer's
products would keep the stack's workers busy) and is deleted at the end."""
from dataclasses import dataclass

import pytest

from shared import localpg
from shared.amqp import Topology
from tests.conftest import TenantKeys, _delete_topology, new_tenant
from tests.processes import spawn, wait_ready


@dataclass
class Services:
    tenant_id: str
    ingest_url: str
    api_url: str
    keys: TenantKeys

    def headers(self, role: str = "write") -> dict[str, str]:
        return self.keys.headers(role)

    def url(self, service: str) -> str:
        return self.ingest_url if service == "ingest" else self.api_url


@pytest.fixture(scope="session")
async def contract_services(stack, pool, amqp_url) -> Services:
    keys = await new_tenant(pool, "contract")
    tenant_id = keys.tenant
    env = {**stack.env, "AMQP_PREFIX": tenant_id}
    ingest_port, api_port = localpg.free_port(), localpg.free_port()
    services = Services(tenant_id, f"http://127.0.0.1:{ingest_port}", f"http://127.0.0.1:{api_port}", keys)
    processes = [
        spawn("contract-ingest", "services.ingest", {**env, "PORT": str(ingest_port)}, stack.log_dir,
              f"{services.ingest_url}/health/ready"),
        spawn("contract-api", "services.api", {**env, "PORT": str(api_port), "PAGE_KEY": keys.read}, stack.log_dir,
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
