from aiohttp import web

from services.api.app import create_app
from shared.logs import configure_logging
from shared.settings import ApiSettings


def main() -> None:
    settings = ApiSettings()
    configure_logging(settings.log_level, settings.log_json)
    web.run_app(create_app(settings), host=settings.host, port=settings.port, access_log=None,
                reuse_port=settings.reuse_port or None)


if __name__ == "__main__":
    main()
