from django.apps import AppConfig


class MeteringConfig(AppConfig):
    """Accounts and their Stripe customers, the pricing catalog, usage ingestion."""

    name = "metering"
    verbose_name = "Metering & accounts"
