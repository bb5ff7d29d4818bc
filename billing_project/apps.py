from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The shared core: datapoints, alerts, worker heartbeat, schedule and demo registries."""

    name = "billing_project"
    label = "core"
    verbose_name = "Billing core"

    def ready(self) -> None:
        import stripe
        from django.conf import settings

        stripe.api_version = settings.STRIPE_API_VERSION
        stripe.api_key = settings.STRIPE_SECRET_KEY
        if settings.STRIPE_API_BASE:
            stripe.api_base = settings.STRIPE_API_BASE

        from . import receivers, schedules  # noqa: F401  (connect receivers, declare schedules)
        from .djstripe_compat import djstripe_compat_apply

        djstripe_compat_apply()
