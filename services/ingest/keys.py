from aiohttp import web

from services.ingest.backlog import Backlog
from services.ingest.publisher import Publisher
from shared.db import Database
from shared.schemas import VersionClock
from shared.settings import IngestSettings

settings_key = web.AppKey("settings", IngestSettings)
publisher_key = web.AppKey("publisher", Publisher)
database_key = web.AppKey("database", Database)
version_clock_key = web.AppKey("version_clock", VersionClock)
backlog_key = web.AppKey("backlog", Backlog)
