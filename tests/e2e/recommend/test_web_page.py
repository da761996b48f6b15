"""The web page in a real browser: Debian's chromium, driven by Playwright, at phone width."""
import asyncio
from pathlib import Path

import pytest

from shared import catalog, dead_letters
from shared.dead_letters import DeadLetter
from shared.schemas import ProductIn
from tests.e2e.recommend.conftest import tenant_services

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


async def shown(page, list_id: str) -> list[str]:
    return await page.eval_on_selector_all(f"#{list_id} > li", "items => items.map(i => i.dataset.id)")


async def like_by_search(page, title: str) -> None:
    loaded = await page.get_attribute("#recommendations", "data-loaded")
    await page.fill("#query", title)
    await page.click("#search button")
    await page.wait_for_selector(f"#products li[data-id] h3:text-is('{title}')")
    await page.click(f"#products li:has(h3:text-is('{title}')) button.like")
    await page.wait_for_function(
        f"document.querySelector('#recommendations').dataset.loaded !== '{loaded}'")


async def test_likes_change_the_recommendations_shown_as_the_api_ranks_them(page, demo_tenant):
    await page.goto(f"{demo_tenant.api_url}/")
    await page.wait_for_selector("#recommendations > li")
    before = await shown(page, "recommendations")
    assert len(before) == 10
    liked_titles = ["Orbit of Glass", "Silent Vacuum", "Heliopause"]
    for title in liked_titles:
        await like_by_search(page, title)
    after = await shown(page, "recommendations")
    liked = [demo_tenant.titles[t] for t in liked_titles]
    status, expected = await demo_tenant.post(demo_tenant.api_url, "/v1/recommendations",
                                              {"liked": liked, "disliked": [], "limit": 10})
    assert status == 200
    assert after == [item["product"]["id"] for item in expected["items"]]
    assert after != before
    assert "Because of" in await page.inner_text("#recommendations > li:first-child .reason")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "web_page.png"), full_page=True)


async def test_picking_a_user_shows_history_and_their_recommendations(page, demo_tenant):
    await page.goto(f"{demo_tenant.api_url}/")
    await page.wait_for_selector("#recommendations > li")
    await page.select_option("#user-picker", "ada")
    await page.wait_for_selector("#history li")
    assert "Orbit of Glass" in await page.inner_text("#history")
    status, expected = await demo_tenant.get("/v1/users/ada/recommendations", limit=10)
    await page.wait_for_function("document.querySelector('#recommendations > li .reason')"
                                 " && !document.querySelector('#recommendations button.like')")
    assert await shown(page, "recommendations") == [item["product"]["id"] for item in expected["items"]]
    await page.click("#recommendations > li:first-child button.similar")
    await page.wait_for_selector("#similar > li")
    assert len(await shown(page, "similar")) == 5


async def test_a_search_made_while_the_page_starts_shows_its_own_results(page, demo_tenant):
    loading = asyncio.Event()

    async def held(route):  # the page's start-up waits for its genres until the search is answered
        await loading.wait()
        await route.continue_()

    await page.route("**/v1/genres", held)
    await page.goto(f"{demo_tenant.api_url}/")
    await page.fill("#query", "Orbit of Glass")
    await page.click("#search button")
    await page.wait_for_selector("#products li[data-id] h3:text-is('Orbit of Glass')")
    loading.set()
    await page.wait_for_selector("#recommendations > li")  # the start-up has finished
    status, expected = await demo_tenant.get("/v1/products", query="Orbit of Glass", limit=20)
    assert status == 200 and page.url == f"{demo_tenant.api_url}/"  # searched in place, not by a reload
    assert await shown(page, "products") == [product["id"] for product in expected["items"]]


async def test_likes_clicked_quickly_show_the_recommendations_for_all_of_them(page, demo_tenant):
    first, second = demo_tenant.titles["Orbit of Glass"], demo_tenant.titles["Silent Vacuum"]

    async def slow_first(route):  # the answer to the first like comes after the answer to both
        if route.request.method == "POST" and route.request.post_data_json["liked"] == [first]:
            await asyncio.sleep(2)
        await route.continue_()

    await page.route("**/v1/recommendations", slow_first)
    await page.goto(f"{demo_tenant.api_url}/")
    await page.wait_for_selector("#recommendations > li")
    async with page.expect_response(lambda r: r.request.method == "POST"
                                    and r.request.post_data_json["liked"] == [first]) as late:
        for title in ("Orbit of Glass", "Silent Vacuum"):
            await page.fill("#query", title)
            await page.click("#search button")
            await page.wait_for_selector(f"#products li[data-id] h3:text-is('{title}')")
            await page.click(f"#products li:has(h3:text-is('{title}')) button.like")
    await (await late.value).finished()
    await page.evaluate("() => new Promise((done) => setTimeout(done, 200))")  # the page has read it
    status, expected = await demo_tenant.post(demo_tenant.api_url, "/v1/recommendations",
                                              {"liked": [first, second], "disliked": [], "limit": 10})
    assert status == 200
    assert await shown(page, "recommendations") == [item["product"]["id"] for item in expected["items"]]


async def test_the_page_says_which_products_are_pending_and_which_failed_and_why(page, pool, database_url, amqp_url,
                                                                                   amqp_prefix, unique):
    # Its own tenant, products written straight to the database (not queued, so never embedded).
    async with tenant_services(pool, database_url, amqp_url, amqp_prefix, "web") as (keys, _, api_url):
        tenant = keys.tenant
        products = [ProductIn(id=f"{name}-{unique}", title=f"{name.title()} film", description="Never embedded.")
                    for name in ("broken", "waiting")]
        async with pool.acquire() as conn:
            await catalog.upsert_products(conn, tenant, [(product, 3) for product in products])
        await dead_letters.record(pool, [DeadLetter(f"m-{unique}", tenant, products[0].id, 3, b"{}",
                                                    "still failing after 5 attempts: boom", 5)])
        await page.goto(f"{api_url}/")
        await page.wait_for_selector("#products li[data-id]")
        assert "Embedding failed: still failing after 5 attempts: boom" in await page.inner_text(
            f"#products li[data-id='{products[0].id}']")
        assert "Embedding pending" in await page.inner_text(f"#products li[data-id='{products[1].id}']")
