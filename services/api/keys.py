from aiohttp import web

from services.api.neighbours import CollaborativeModels
from services.api.tenant_models import ActiveModels
from shared.db import Database
from shared.settings import ApiSettings

settings_key = web.AppKey("settings", ApiSettings)
database_key = web.AppKey("database", Database)
active_models_key = web.AppKey("active_models", ActiveModels)

collaborative_models_key = web.AppKey("collaborative_models", CollaborativeModels)
