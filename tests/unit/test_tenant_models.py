"""The api's per-tenant model lookup: read once per second at most, per tenant."""
from services.api.tenant_models import ActiveModels


class FakeConn:
    def __init__(self):
        self.active = {"a": ("model-2", 256)}
        self.queries = 0

    async def fetchrow(self, query, tenant_id, default):
        self.queries += 1
        name, dimension = self.active.get(tenant_id, (default, 384))
        return {"name": name, "dimension": dimension}


async def test_a_tenants_model_is_remembered_for_the_ttl_then_read_again():
    now = [0.0]
    conn, cache = FakeConn(), ActiveModels("model-1", ttl_s=1.0, clock=lambda: now[0])
    assert await cache.get(conn, "a") == ("model-2", 256)
    assert await cache.get(conn, "b") == ("model-1", 384)  # never switched: the default
    conn.active["a"] = ("model-3", 128)  # a switch
    now[0] = 0.5
    assert await cache.get(conn, "a") == ("model-2", 256) and conn.queries == 2
    now[0] = 1.01
    assert await cache.get(conn, "a") == ("model-3", 128) and conn.queries == 3
