from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    """The legacy billing database (read-only) and the daily zero-drift reconciliation."""

    name = "reconciliation"
    verbose_name = "Reconciliation"
