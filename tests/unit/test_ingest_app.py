"""The ingest app through its factory, with a fake publisher, fake keys and no database."""
import pytest

from services.ingest.app import Deps, create_app
from shared.errors import Unavailable
from shared.keys import KeyRecord
from shared.settings import IngestSettings

WRITE = {"Authorization": "Bearer write-key"}


class FakePublisher:
    def __init__(self, problem: str | None = None):
        self._problem = problem
        self.published = []

    async def problem(self):
        return self._problem

    async def publish(self, messages):
        if self._problem:
            raise Unavailable(self._problem)
        self.published += messages


class NoDatabase:
    """No pool for pending rows; the quota check sees a catalogue of `live` products."""

    pool = None

    def __init__(self, live: int = 0):
        self.live = live

    async def problem(self):
        return None

    def require(self):
        return self

    async def fetchrow(self, query, tenant_id, product_ids):
        return {"live": self.live, "known": 0}


class FakeKeys:
    """The keys of tenant t1: `write-key` and `read-key`."""

    async def lookup(self, key):
        return {"write-key": KeyRecord("kw", "t1", "write"), "read-key": KeyRecord("kr", "t1", "read")}.get(key)

    async def tenant(self, tenant_id):
        return None


@pytest.fixture
def publisher():
    return FakePublisher()


@pytest.fixture
async def client(aiohttp_client, publisher):
    settings = IngestSettings(max_batch=5, max_body_bytes=50_000)
    return await aiohttp_client(create_app(settings, Deps(publisher, NoDatabase(), keys=FakeKeys())), headers=WRITE)


GOOD = {"title": "Alien", "description": "A crew meets a creature.", "genres": ["Horror"], "year": 1979}


async def test_accepts_one_product_and_assigns_an_id(client, publisher):
    response = await client.post("/v1/products", json=GOOD)
    body = await response.json()
    assert response.status == 202
    assert len(body["ids"]) == 1 and body["ids"][0] == publisher.published[0].product_id


async def test_accepts_a_batch_keeping_client_ids(client, publisher):
    response = await client.post("/v1/products", json=[{**GOOD, "id": f"m{i}"} for i in range(5)])
    assert response.status == 202
    assert (await response.json())["ids"] == [f"m{i}" for i in range(5)]
    versions = [m.version for m in publisher.published]
    assert versions == sorted(versions) and len(set(versions)) == 5


async def test_one_bad_item_rejects_the_whole_batch_naming_it(client, publisher):
    response = await client.post("/v1/products", json=[GOOD, {**GOOD, "title": ""}, {**GOOD, "year": "old"}])
    body = await response.json()
    assert response.status == 422
    assert [d["field"] for d in body["error"]["details"]] == ["[1].title", "[2].year"]
    assert publisher.published == []


@pytest.mark.parametrize(
    "payload, field",
    [([], "body"), ([GOOD] * 6, "body"), ("just a string", "body"), ({**GOOD, "extra": 1}, "extra")],
)
async def test_bad_shapes_are_422_naming_the_field(client, publisher, payload, field):
    response = await client.post("/v1/products", json=payload)
    assert response.status == 422
    assert field in [d["field"] for d in (await response.json())["error"]["details"]]
    assert publisher.published == []


async def test_wrong_content_type_and_broken_json(client, publisher):
    response = await client.post("/v1/products", data="title=x", headers={"Content-Type": "text/plain"})
    assert response.status == 415 and (await response.json())["error"]["code"] == "unsupported_media_type"
    response = await client.post("/v1/products", data="{oops", headers={"Content-Type": "application/json"})
    assert response.status == 400 and (await response.json())["error"]["details"][0]["field"] == "body"
    assert publisher.published == []


async def test_a_body_over_the_limit_is_413_json(client, publisher):
    response = await client.post("/v1/products", json={**GOOD, "description": "x" * 60_000})
    assert response.status == 413 and (await response.json())["error"]["code"] == "body_too_large"


async def test_put_takes_the_id_from_the_path_and_rejects_a_different_one(client, publisher):
    assert (await client.put("/v1/products/m1", json=GOOD)).status == 202
    assert publisher.published[0].product_id == "m1"
    response = await client.put("/v1/products/m1", json={**GOOD, "id": "m2"})
    assert response.status == 422 and (await response.json())["error"]["details"][0]["field"] == "id"
    response = await client.put("/v1/products/bad%20id", json=GOOD)
    assert response.status == 422 and (await response.json())["error"]["details"][0]["field"] == "id"


async def test_delete_publishes_a_newer_version(client, publisher):
    await client.put("/v1/products/m1", json=GOOD)
    assert (await client.delete("/v1/products/m1")).status == 202
    upsert, delete = publisher.published
    assert delete.type == "product.delete" and delete.version > upsert.version


async def test_broker_down_is_503_with_retry_after(aiohttp_client):
    app = create_app(IngestSettings(), Deps(FakePublisher("broker unreachable"), NoDatabase(), keys=FakeKeys()))
    client = await aiohttp_client(app, headers=WRITE)
    response = await client.post("/v1/products", json=GOOD)
    assert response.status == 503 and response.headers["Retry-After"]
    ready = await client.get("/health/ready")
    assert ready.status == 503 and "broker unreachable" in (await ready.json())["problems"]


async def test_messages_carry_the_tenant_of_the_key(client, publisher):
    await client.put("/v1/products/m1", json=GOOD)
    await client.delete("/v1/products/m1")
    assert [m.tenant_id for m in publisher.published] == ["t1", "t1"]


async def test_a_read_key_may_not_write(client, publisher):
    response = await client.post("/v1/products", json=GOOD, headers={"Authorization": "Bearer read-key"})
    body = await response.json()
    assert response.status == 403 and body["error"]["code"] == "forbidden" and "write" in body["error"]["message"]
    assert publisher.published == []


async def test_a_write_past_the_catalogue_quota_is_refused_and_nothing_queued(aiohttp_client, publisher):
    app = create_app(IngestSettings(catalogue_quota=10), Deps(publisher, NoDatabase(live=9), keys=FakeKeys()))
    client = await aiohttp_client(app, headers=WRITE)
    response = await client.post("/v1/products", json=[{**GOOD, "id": "a"}, {**GOOD, "id": "b"}])
    body = await response.json()
    assert response.status == 403 and body["error"]["code"] == "quota_exceeded"
    assert "quota is 10 products" in body["error"]["message"] and publisher.published == []
    assert (await client.post("/v1/products", json={**GOOD, "id": "a"})).status == 202
