from django.apps import AppConfig


class ExportsConfig(AppConfig):
    """Invoice history and legacy PDFs to R2, the Stripe event archive, month-end reports."""

    name = "exports"
    verbose_name = "Exports & archives"
