from aiohttp import web

from shared.db import Database
from shared.settings import ApiSettings

settings_key = web.AppKey("settings", ApiSettings)
database_key = web.AppKey("database", Database)
