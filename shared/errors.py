"""The error hierarchy. HTTP views raise these; one middleware maps them to JSON."""


class AppError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, details: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []


class InvalidInput(AppError):
    status = 422
    code = "invalid_input"


class BadParameter(AppError):
    status = 400
    code = "bad_parameter"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


# Seconds a client is told to wait (Retry-After) while a dependency is down or the backlog is full.
RETRY_AFTER_S = 2


class QuotaExceeded(AppError):
    """A write that would take the tenant past a quota; nothing of it was accepted."""

    status = 403
    code = "quota_exceeded"


class Unavailable(AppError):
    """A dependency (database, broker) cannot take the request now; the client may retry."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, retry_after_s: int = RETRY_AFTER_S):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RetryableError(Exception):
    """A worker-side failure worth retrying (database down, deadlock)."""


class PermanentError(Exception):
    """A worker-side failure that no retry will fix (a malformed message)."""
