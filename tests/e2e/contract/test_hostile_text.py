"""SQL- and HTML-looking text in every text field: stored and shown back verbatim by the api, found
by search, and shown as text (never markup) on the web page."""
import uuid

import aiohttp
import pytest

pytestmark = pytest.mark.e2e

SQL = "Robert'); DROP TABLE products; -- \" OR 1=1 /*"
HTML = "<img src=x onerror=\"window.__hostile=1\"><script>window.__hostile=2</script>&amp; <b>bold</b>"


def hostile_product(product_id: str) -> dict:
    return {
        "id": product_id,
        "title": f"{HTML} {SQL}",
        "description": f"{SQL}\n{HTML}",
        "genres": ["<i>Noir</i>", "Drama'; --"],
        "year": 1999,
        "metadata": {"note": SQL, HTML: HTML, "list": [SQL, HTML]},
    }


async def call(session: aiohttp.ClientSession, method: str, url: str, **kwargs) -> tuple[int, object]:
    async with session.request(method, url, **kwargs) as response:
        return response.status, await response.json()


async def test_hostile_text_is_stored_and_shown_back_verbatim(contract_services):
    ingest, api = contract_services.ingest_url, contract_services.api_url
    product_id, user_id = f"hostile-{uuid.uuid4().hex[:8]}", f"user-{uuid.uuid4().hex[:8]}"
    sent = hostile_product(product_id)
    async with aiohttp.ClientSession(headers=contract_services.headers()) as session:
        status, body = await call(session, "POST", f"{ingest}/v1/products", json=[sent])
        assert (status, body["ids"]) == (202, [product_id])
        event = {"product_id": product_id, "type": "like", "event_id": SQL}
        status, body = await call(session, "POST", f"{ingest}/v1/users/{user_id}/interactions", json=[event, event])
        assert (status, body["stored"]) == (201, 1)  # the same event twice in a batch is stored once
        status, shown = await call(session, "GET", f"{api}/v1/products/{product_id}")
        assert status == 200
        assert {key: shown[key] for key in sent} == sent
        status, found = await call(session, "GET", f"{api}/v1/products", params={"query": "DROP TABLE products"})
        assert status == 200 and [p["id"] for p in found["items"]] == [product_id]
        status, history = await call(session, "GET", f"{api}/v1/users/{user_id}/interactions")
        assert status == 200 and [e["title"] for e in history["items"]] == [sent["title"]]


async def test_the_web_page_shows_hostile_text_as_text(contract_services, page):
    product_id = f"hostile-{uuid.uuid4().hex[:8]}"
    sent = hostile_product(product_id)
    async with aiohttp.ClientSession(headers=contract_services.headers()) as session:
        status, _ = await call(session, "POST", f"{contract_services.ingest_url}/v1/products", json=sent)
        assert status == 202
    await page.goto(f"{contract_services.api_url}/")
    await page.fill("#query", "DROP TABLE products")
    await page.click("#search button")
    card = f"#products li[data-id='{product_id}']"
    await page.wait_for_selector(card)
    assert await page.inner_text(f"{card} h3") == sent["title"]
    assert await page.text_content(f"{card} .desc") == sent["description"]
    assert await page.eval_on_selector(card, "c => c.querySelectorAll('img, script, b').length") == 0
    assert await page.evaluate("window.__hostile") is None
