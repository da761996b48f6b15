import gc
import os

# Request-time matrix products are tiny: BLAS threads only add hand-offs (47 ms instead of 1 ms for a
# 60 x 384 by 384 x 200 product on a busy 2-core machine). Scale with api processes instead.
# Set before numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

# A request allocates thousands of short-lived containers that reference counting frees; the
# default young-generation threshold (700) ran the collector every third request (0.1 ms of CPU
# per request at 16 in flight); with 5,000 it ran once in 2,000 requests.
GC_YOUNG_THRESHOLD = 5_000

from aiohttp import web  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from services.api.app import create_app  # noqa: E402
from shared.logs import configure_logging  # noqa: E402
from shared.settings import ApiSettings  # noqa: E402


def main() -> None:
    try:
        settings = ApiSettings()
    except ValidationError as exc:  # e.g. MODE=production with demo mode's open spike routes
        raise SystemExit(f"api: invalid settings: {exc}") from None
    configure_logging(settings.log_level, settings.log_json)
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    gc.freeze()  # what importing and setting up made lives as long as the process
    web.run_app(create_app(settings), host=settings.host, port=settings.port, access_log=None,
                reuse_port=settings.reuse_port or None)


if __name__ == "__main__":
    main()
