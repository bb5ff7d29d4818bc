"""The usage types producers report and the Stripe Billing Meter event name of each.

One meter per usage type (aggregation `sum`); the catalog import creates the meters with these
event names and our outbox sends meter events under them. Keep the two in step here only.
"""

from django.db import models


class UsageType(models.TextChoices):
    ST = "ST", "ST impressions"
    RM = "RM", "RM impressions"
    CV = "CV", "CV impressions"


METER_EVENT_NAMES: dict[str, str] = {
    UsageType.ST: "adventive_st_impressions",
    UsageType.RM: "adventive_rm_impressions",
    UsageType.CV: "adventive_cv_impressions",
}

# The meter event payload keys (Stripe's defaults for a meter's customer mapping and value).
METER_CUSTOMER_KEY = "stripe_customer_id"
METER_VALUE_KEY = "value"


def meter_event_name(usage_type: str) -> str:
    """The meter event name for a usage type (ST/RM/CV)."""
    return METER_EVENT_NAMES[UsageType(usage_type)]
