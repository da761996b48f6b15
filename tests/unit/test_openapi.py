"""The published contract of ingest, built from its route table: documented as it is served."""
import pytest

from services.ingest.app import Deps, create_app
from shared.schemas import ProductIn
from shared.settings import IngestSettings
from tests.unit.test_ingest_app import FakeKeys, FakePublisher, NoDatabase

UNDOCUMENTED = {"/metrics", "/health/live", "/health/ready", "/openapi.json", "/docs", "/docs/{name}"}


@pytest.fixture
async def client(aiohttp_client):
    return await aiohttp_client(create_app(IngestSettings(max_batch=7), Deps(FakePublisher(), NoDatabase(), keys=FakeKeys())))


async def test_every_route_is_documented_with_its_models(client):
    response = await client.get("/openapi.json")
    doc = await response.json()
    assert response.status == 200 and doc["openapi"] == "3.1.0"
    served = {(r.method.lower(), r.resource.canonical) for r in client.app.router.routes() if r.method != "HEAD"}
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert documented == {(m, p) for m, p in served if p not in UNDOCUMENTED}
    post = doc["paths"]["/v1/products"]["post"]
    one, many = post["requestBody"]["content"]["application/json"]["schema"]["anyOf"]
    assert one == {"$ref": "#/components/schemas/ProductIn"} and many["maxItems"] == 7
    assert doc["components"]["schemas"]["ProductIn"]["properties"] == ProductIn.model_json_schema()["properties"]
    assert doc["components"]["schemas"]["ProductIn"]["examples"]
    for status in ("400", "413", "415", "422", "503"):
        ref = post["responses"][status]["$ref"].rsplit("/", 1)[1]
        error = doc["components"]["responses"][ref]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ErrorBody"}
    assert doc["paths"]["/v1/products/{product_id}"]["delete"]["parameters"][0]["schema"]["maxLength"] == 128


async def test_docs_page_renders_the_document_from_bundled_files(client):
    page = await client.get("/docs")
    html = await page.text()
    assert page.status == 200 and "/openapi.json" in html
    assert "http://" not in html and "https://" not in html  # no CDN
    for asset in ("/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"):
        assert asset in html
        response = await client.get(asset)
        assert response.status == 200 and len(await response.read()) > 10_000
    assert (await client.get("/docs/..%2Fcore.py")).status == 404


async def test_api_routes_are_documented_with_their_query_models(aiohttp_client):
    from services.api.app import create_app as create_api
    from shared.settings import ApiSettings

    client = await aiohttp_client(create_api(ApiSettings(), NoDatabase()))
    doc = await (await client.get("/openapi.json")).json()
    served = {(r.method.lower(), r.resource.canonical) for r in client.app.router.routes() if r.method != "HEAD"}
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert documented == {(m, p) for m, p in served if p not in UNDOCUMENTED | {"/", "/static"}}
    recommend = doc["paths"]["/v1/users/{user_id}/recommendations"]["get"]
    params = {p["name"]: p["schema"] for p in recommend["parameters"]}
    assert set(params) == {"user_id", "limit", "cursor", "genre", "year_from", "year_to", "exclude", "strategy",
                           "weights", "diversity"}
    assert params["strategy"]["enum"][0] == "hybrid" and params["limit"] == {
        "default": 10, "description": "How many items (1-100).", "minimum": 1, "maximum": 100, "type": "integer"}
    assert params["exclude"]["type"] == "string"  # comma-separated in a query string
    assert all("null" not in str(schema) for schema in params.values())  # a query string has no null
    session = doc["paths"]["/v1/recommendations"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert session == {"$ref": "#/components/schemas/SessionBody"}
    assert doc["components"]["schemas"]["SessionBody"]["additionalProperties"] is False
