"""The docs page in a real browser: Swagger UI from the bundled files renders every documented operation."""
import aiohttp
import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("service", ["ingest", "api"])
async def test_docs_page_renders_every_operation(contract_services, page, service):
    url = contract_services.url(service)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/openapi.json") as response:
            document = await response.json()
    operations = sum(len(methods) for methods in document["paths"].values())
    external = []
    page.on("request", lambda request: None if request.url.startswith(url) else external.append(request.url))
    await page.goto(f"{url}/docs")
    await page.wait_for_selector(".opblock")
    assert len(await page.query_selector_all(".opblock")) == operations
    assert document["info"]["title"] in await page.inner_text(".info .title")
    assert external == []  # everything from the service itself
