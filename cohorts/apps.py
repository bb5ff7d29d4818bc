from django.apps import AppConfig


class CohortsConfig(AppConfig):
    """Migration cohorts, membership history, checklists and gates."""

    name = "cohorts"
    verbose_name = "Cohort migration"
