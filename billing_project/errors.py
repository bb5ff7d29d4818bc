"""Errors the services raise; views, commands and admin actions turn them into messages."""


class BillingError(Exception):
    """A business rule refused the operation. `field` names the input at fault, if any."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code

    def as_dict(self) -> dict:
        body = {"error": {"code": self.code, "message": self.message}}
        if self.field:
            body["error"]["field"] = self.field
        return body


class ConflictError(BillingError):
    """The request contradicts what is already stored (HTTP 409)."""

    status_code = 409

    def __init__(self, message: str, *, field: str | None = None, code: str = "conflict"):
        super().__init__(message, field=field, code=code)


class LegacyWriteRefused(BillingError):
    """The legacy billing database is read-only for this application."""

    def __init__(self, message: str = "the legacy billing database is read-only"):
        super().__init__(message, code="legacy_read_only")


class ExternalServiceError(BillingError):
    """A service we do not own (Stripe, Mailgun, storage) failed; the work can be retried."""

    status_code = 503

    def __init__(self, message: str, *, service: str):
        super().__init__(message, code=f"{service}_unavailable")
        self.service = service
