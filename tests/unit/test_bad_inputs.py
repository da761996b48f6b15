"""Named bad inputs to ingest, each answered with a clear 4xx naming the field (nothing published)."""
import json

import pytest

from services.ingest.app import Deps, create_app
from shared.settings import IngestSettings
from tests.unit.test_ingest_app import GOOD, WRITE, FakeKeys, FakePublisher, NoDatabase

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def publisher():
    return FakePublisher()


@pytest.fixture
async def client(aiohttp_client, publisher):
    settings = IngestSettings(max_body_bytes=50_000)
    return await aiohttp_client(create_app(settings, Deps(publisher, NoDatabase(), keys=FakeKeys())), headers=WRITE)


async def error(response, status: int) -> dict:
    body = await response.json()
    assert response.status == status, body
    assert set(body) == {"error"} and body["error"]["message"] and body["error"]["details"]
    return body["error"]


@pytest.mark.parametrize("body, problem", [
    (b'{"title": "caf\xe9"}', "utf-8"),  # Latin-1, not UTF-8
    (b"[" * 20_000 + b"]" * 20_000, "nested too deeply"),
    (b'{"title": "A", "description": "B", "metadata": {"rating": NaN}}', "NaN"),
    (b'{"title": "A", "description": "B", "metadata": {"rating": Infinity}}', "Infinity"),
    (b'{"title": "A", "description": "B", "metadata": {"rating": -Infinity}}', "Infinity"),
    (b'{"title": "A", "description": "B", "metadata": {"rating": 1e400}}', "out of range"),
    (b'{"title": "\\ud800", "description": "B"}', "surrogate"),
])
async def test_bodies_that_are_not_strict_json_are_400(client, publisher, body, problem):
    found = await error(await client.post("/v1/products", data=body, headers=JSON), 400)
    assert found["code"] == "malformed_json" and found["details"][0]["field"] == "body"
    assert problem.lower() in json.dumps(found).lower()
    assert publisher.published == []


async def test_a_body_over_the_size_limit_is_413(client, publisher):
    big = json.dumps({**GOOD, "description": "x" * 60_000})
    found = await error(await client.post("/v1/products", data=big, headers=JSON), 413)
    assert found["details"][0]["field"] == "body" and publisher.published == []


async def test_a_1001_element_array_is_422_naming_the_body(client, publisher):
    found = await error(await client.post("/v1/products", json=[{"title": "A", "description": "B"}] * 1001), 422)
    assert found["details"] == [{"field": "body", "problem": "array of 1001 items; allowed 1 to 1000"}]
    assert publisher.published == []


@pytest.mark.parametrize("bad_id", ["a/b", "../etc", "a\\b", "a\nb", "tab\there", "nul\x00", "x" * 129, ""])
async def test_bad_ids_in_the_body_are_422_naming_the_field(client, publisher, bad_id):
    found = await error(await client.post("/v1/products", json=[GOOD, {**GOOD, "id": bad_id}]), 422)
    assert [d["field"] for d in found["details"]] == ["[1].id"] and publisher.published == []


@pytest.mark.parametrize("path", ["a%2Fb", "..%2F..%2Fx", "a%0Ab", "a%00b", "x" * 129, "-leading"])
async def test_bad_ids_in_the_path_are_422_naming_the_id(client, publisher, path):
    for method in ("PUT", "DELETE"):
        response = await client.request(method, f"/v1/products/{path}", json=GOOD)
        assert (await error(response, 422))["details"][0]["field"] == "id"
    assert publisher.published == []


async def test_an_id_of_128_characters_is_accepted(client, publisher):
    response = await client.post("/v1/products", json={**GOOD, "id": "x" * 128})
    assert response.status == 202 and publisher.published[0].product_id == "x" * 128


async def test_the_same_id_twice_in_one_batch_is_422_naming_the_repeat(client, publisher):
    body = [{**GOOD, "id": "m1"}, {**GOOD, "id": "m2"}, {**GOOD, "id": "m1", "title": "Other"}]
    found = await error(await client.post("/v1/products", json=body), 422)
    assert [d["field"] for d in found["details"]] == ["[2].id"] and "[0].id" in found["details"][0]["problem"]
    assert publisher.published == []


async def test_the_same_product_twice_in_one_order_is_422(client):
    order = {"user_id": "u1", "order_id": "o1", "items": [{"product_id": "p1"}, {"product_id": "p1", "quantity": 2}]}
    found = await error(await client.post("/v1/orders", json=order), 422)
    assert [d["field"] for d in found["details"]] == ["items[1].product_id"]


@pytest.mark.parametrize("field, value", [("occurred_at", 0), ("value", "4.5"), ("value", True)])
async def test_interaction_fields_take_only_their_json_type(client, field, value):
    event = {"product_id": "p1", "type": "rating", "value": 4.5, field: value}
    found = await error(await client.post("/v1/users/u1/interactions", json=event), 422)
    assert [d["field"] for d in found["details"]] == [field]


@pytest.mark.parametrize("path, body, field", [
    ("/v1/products", {**GOOD, "genres": ["Drama", "Hor\x00ror"]}, "genres[1]"),
    ("/v1/products", {**GOOD, "title": "Al\x00ien"}, "title"),
    ("/v1/users/u1/interactions", {"product_id": "p1", "type": "view", "event_id": "e\x001"}, "event_id"),
])
async def test_nul_characters_in_text_are_422(client, publisher, path, body, field):
    found = await error(await client.post(path, json=body), 422)
    assert [d["field"] for d in found["details"]] == [field] and publisher.published == []


@pytest.fixture
async def api(aiohttp_client):
    from services.api.app import create_app as create_api
    from shared.settings import ApiSettings

    return await aiohttp_client(create_api(ApiSettings(), NoDatabase(), FakeKeys()), headers=WRITE)


@pytest.mark.parametrize("body, status, field", [
    (b'{"liked": [' + b'"p1",' * 300_000 + b'"p2"]}', 413, "body"),  # over the api's 1 MiB
    (b'{"liked": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", 400, "body"),
    (b'{"liked": ["p1"], "diversity": NaN}', 400, "body"),
    (b'{"liked": ["p1"], "limit": Infinity}', 400, "body"),
    (b'{"liked": ["\xff"]}', 400, "body"),
    (json.dumps({"liked": [f"p{i}" for i in range(1001)]}).encode(), 400, "liked"),
    (json.dumps({"liked": ["../etc/passwd"]}).encode(), 400, "liked"),
    (json.dumps({"liked": ["a\nb"]}).encode(), 400, "liked"),
    (json.dumps({"liked": ["x" * 129]}).encode(), 400, "liked"),
    (json.dumps({"filters": {"exclude": ["a/b"]}}).encode(), 400, "filters.exclude"),
])
async def test_bad_session_bodies_are_4xx_naming_the_field(api, body, status, field):
    found = await error(await api.post("/v1/recommendations", data=body, headers=JSON), status)
    assert found["details"][0]["field"] == field


@pytest.mark.parametrize("path, field", [
    ("/v1/users/a%2Fb/recommendations", "user_id"),
    ("/v1/users/a%0Ab/interactions", "user_id"),
    ("/v1/users/" + "x" * 129 + "/recommendations", "user_id"),
    ("/v1/products/..%2F..%2Fetc/similar", "product_id"),
    ("/v1/users/u1/recommendations?exclude=a/b", "exclude"),
    ("/api/products/recommendation?users_id=a%00b", "users_id"),
])
async def test_bad_ids_in_api_paths_and_queries_are_400_naming_them(api, path, field):
    found = await error(await api.get(path), 400)
    assert found["details"][0]["field"] == field
