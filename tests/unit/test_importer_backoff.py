"""The importer waits out refusals that say Retry-After (a full backlog), however many, and finishes."""
import io

import aiohttp
from aiohttp import web

from tools.importer import Importer, Report
from tools.progress import Progress


async def test_a_full_backlog_is_waited_out_beyond_max_retries(aiohttp_server):
    calls = {"n": 0}

    async def products(request: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] <= 12:  # far more refusals than max_retries
            return web.json_response({"error": {"code": "backlog_full", "message": "full", "details": []}},
                                     status=503, headers={"Retry-After": "0"})
        body = await request.json()
        return web.json_response({"accepted": len(body), "ids": [p["id"] for p in body]}, status=202)

    app = web.Application()
    app.router.add_post("/v1/products", products)
    server = await aiohttp_server(app)
    report = Report(rows=2)
    async with aiohttp.ClientSession() as session:
        importer = Importer(session, str(server.make_url("/")), report, Progress(2, "imported", io.StringIO()),
                            max_retries=3)
        await importer.post_batch([(0, {"id": "a", "title": "A", "description": "a"}),
                                   (1, {"id": "b", "title": "B", "description": "b"})])
    assert report.accepted_ids == ["a", "b"] and report.rejected == []
    assert calls["n"] == 13


async def test_a_503_without_retry_after_still_gives_up_after_max_retries(aiohttp_server):
    async def products(request: web.Request) -> web.Response:
        return web.json_response({"error": {"code": "x", "message": "down", "details": []}}, status=503)

    app = web.Application()
    app.router.add_post("/v1/products", products)
    server = await aiohttp_server(app)
    report = Report(rows=1)
    async with aiohttp.ClientSession() as session:
        importer = Importer(session, str(server.make_url("/")), report, Progress(1, "imported", io.StringIO()),
                            max_retries=1)
        await importer.post_batch([(0, {"id": "a", "title": "A", "description": "a"})])
    assert report.accepted_ids == [] and "HTTP 503" in report.rejected[0].reason
