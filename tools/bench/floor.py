"""The stack's floor, for the gateway bench: an aiohttp process that answers each user's request by
running the statements the api ran for that user (recorded by the bench) on the api's own database
pool (`services.api.app.database_ctx`), then sending the api's own answer for that user, stored as bytes. No ranking, no key
check, no query parsing, no JSON encoding: what any api on aiohttp and asyncpg pays to serve these
statements. Its requests/s over the bare ceiling's is the most an api on this stack can reach.

    python -m tools.bench.floor RECORDED   (PORT, DATABASE_URL, EF_SEARCH, DB_POOL_MAX as the api's)

RECORDED: a pickle of {user id: (statements, body)}, statements as `gateway.Recording` keeps them.
"""
import os
import pickle
import sys

from aiohttp import web

from services.api.app import database_ctx
from services.api.keys import database_key, settings_key
from shared.http import setup_health
from shared.settings import ApiSettings


def create_app(recorded: dict[str, tuple[list, bytes]], settings: ApiSettings) -> web.Application:
    """The floor's app: its database pool is the api's (`database_ctx`), ready when the api would be."""
    async def answer(request: web.Request) -> web.Response:
        statements, body = recorded[request.match_info["user_id"]]
        async with request.app[database_key].require().acquire() as conn:
            for method, query, args in statements:
                await getattr(conn, method)(query, *args)
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app[settings_key] = settings
    app.cleanup_ctx.append(database_ctx)
    app.router.add_get("/v1/users/{user_id}/recommendations", answer)
    setup_health(app, [lambda: app[database_key].problem()])
    return app


def main() -> None:
    with open(sys.argv[1], "rb") as file:
        recorded = pickle.load(file)
    settings = ApiSettings()
    web.run_app(create_app(recorded, settings), host="127.0.0.1", port=int(os.environ["PORT"]), access_log=None,
                print=None)


if __name__ == "__main__":
    main()
