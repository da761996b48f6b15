from aiohttp import web

from shared.db import Database
from shared.settings import ApiSettings

settings_key = web.AppKey("settings", ApiSettings)
database_key = web.AppKey("database", Database)


def tenant_of(request: web.Request) -> str:
    """The tenant a request acts for: the ONE place views take it from (the api's settings until
    requests carry API keys)."""
    return request.app[settings_key].tenant_id
