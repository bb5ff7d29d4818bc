from django.apps import AppConfig


class InvoicesConfig(AppConfig):
    """Delivery of finalized Stripe invoices: branded PDF, storage, email, delivery state."""

    name = "invoices"
    verbose_name = "Invoice delivery"

    def ready(self) -> None:
        from . import tracking  # noqa: F401  (connect Mailgun tracking receivers)
        from .receivers import receivers_register

        receivers_register()
