"""The stack's floor, for the gateway bench: an aiohttp process that answers each user's request by
running the statements the api ran for that user (recorded by the bench) on an asyncpg pool set up
as the api's, then sending the api's own answer for that user, stored as bytes. No ranking, no key
check, no query parsing, no JSON encoding: what any api on aiohttp and asyncpg pays to serve these
statements. Its requests/s over the bare ceiling's is the most an api on this stack can reach.

    python -m tools.bench.floor RECORDED   (PORT, DATABASE_URL, EF_SEARCH, DB_POOL_MAX as the api's)

RECORDED: a pickle of {user id: (statements, body)}, statements as `gateway.Recording` keeps them.
"""
import os
import pickle
import sys

from aiohttp import web

from services.api.app import query_settings
from shared.db import create_pool
from shared.settings import ApiSettings

pool_key = web.AppKey("pool", object)


def create_app(recorded: dict[str, tuple[list, bytes]], settings: ApiSettings) -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        statements, body = recorded[request.match_info["user_id"]]
        async with request.app[pool_key].acquire() as conn:
            for method, query, args in statements:
                await getattr(conn, method)(query, *args)
        return web.Response(body=body, content_type="application/json")

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    async def pool_ctx(app: web.Application):
        app[pool_key] = await create_pool(settings, server_settings=query_settings(settings), keep_session=True)
        yield
        await app[pool_key].close()

    app = web.Application()
    app.cleanup_ctx.append(pool_ctx)
    app.router.add_get("/v1/users/{user_id}/recommendations", answer)
    app.router.add_get("/health/ready", ready)
    return app


def main() -> None:
    with open(sys.argv[1], "rb") as file:
        recorded = pickle.load(file)
    settings = ApiSettings()
    web.run_app(create_app(recorded, settings), host="127.0.0.1", port=int(os.environ["PORT"]), access_log=None,
                print=None)


if __name__ == "__main__":
    main()
