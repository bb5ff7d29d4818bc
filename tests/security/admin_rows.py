"""One stored row for every model the admin site registers, for pages and actions to act on.

Models with a factory get it; the rest are filled generically (required fields only, first
choice, fixed dates), so a model newly registered in the admin is covered without edits here.
"""

import itertools
from datetime import date

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import models

from cohorts.models import Cohort
from tests import factories
from tests.cohorts.factories import (
    DriftRecordFactory,
    ReconciliationResultFactory,
    ReconciliationRunFactory,
    SignOffFactory,
)

_serial = itertools.count(1)


def _cohort() -> Cohort:
    return factories.CohortMembershipFactory().cohort


FACTORIES = {
    "core.alert": factories.AlertFactory,
    "core.billingevent": factories.BillingEventFactory,
    "core.workerheartbeat": factories.WorkerHeartbeatFactory,
    "cohorts.cohort": _cohort,
    "cohorts.cohortmembership": factories.CohortMembershipFactory,
    "cohorts.signoff": lambda: SignOffFactory(
        cohort=_cohort(), by=get_user_model().objects.create_user(f"signer{next(_serial)}")
    ),
    "metering.billingaccount": factories.BillingAccountFactory,
    "invoices.invoicedelivery": lambda: factories.InvoiceDeliveryFactory(sent=True),
    "invoices.trackingevent": factories.TrackingEventFactory,
    "reconciliation.legacyinvoice": factories.LegacyInvoiceFactory,
    "reconciliation.driftrecord": lambda: DriftRecordFactory(
        account=factories.CohortMembershipFactory().account
    ),
    "reconciliation.reconciliationresult": lambda: ReconciliationResultFactory(
        account=factories.BillingAccountFactory(),
        run=ReconciliationRunFactory(run_date=date(2026, 3, 2), status="drift"),
    ),
}

# Values the generic fill cannot guess: the row must be one its admin lists (django-q's
# Failure admin shows only failed tasks) and read as Stripe sends it (an event has an object).
OVERRIDES = {
    "django_q.failure": {"success": False, "func": "os.getcwd"},
    "django_q.success": {"func": "os.getcwd"},
    "django_q.schedule": {"func": "os.getcwd"},
    "djstripe.event": {
        "data": {"object": {"id": "in_Test0001", "object": "invoice", "customer": None}}
    },
}


def _value(field: models.Field):
    if field.choices:
        return field.choices[0][0]
    n = next(_serial)
    if isinstance(field, models.ForeignKey | models.OneToOneField):
        return row_for(field.related_model)
    if isinstance(field, models.DateTimeField):
        return factories.FIXED_AT
    if isinstance(field, models.DateField):
        return date(2026, 1, 1)
    if isinstance(field, models.BooleanField):
        return False
    if isinstance(field, models.UUIDField):
        import uuid

        return uuid.uuid5(factories.FACTORY_NAMESPACE, f"row-{n}")
    if isinstance(field, models.DecimalField):
        return 1
    if isinstance(field, models.SmallIntegerField | models.PositiveSmallIntegerField):
        return n % 30_000 + 1
    if isinstance(field, models.IntegerField | models.FloatField):
        return n
    if isinstance(field, models.JSONField):
        return {}
    if isinstance(field, models.GenericIPAddressField):
        return "127.0.0.1"
    if isinstance(field, models.EmailField):
        return f"row{n}@example.com"
    if isinstance(field, models.BinaryField):
        return b"row"
    if isinstance(field, models.CharField | models.TextField):
        text = f"row-{n}"
        return text[: field.max_length] if field.max_length else text
    raise TypeError(f"no generic value for {field.model._meta.label}.{field.name}")


def row_for(model: type[models.Model]) -> models.Model:
    """A row of `model`: its factory's, else one with every required field filled."""
    make = FACTORIES.get(model._meta.label_lower)
    if make is not None:
        return make()
    values = dict(OVERRIDES.get(model._meta.label_lower, {}))
    for field in model._meta.concrete_fields:
        if field.name in values:
            continue
        if field.primary_key and (field.has_default() or isinstance(field, models.AutoField)):
            continue
        blank_text = field.has_default() and field.get_default() == ""
        if (field.has_default() and not blank_text) or field.null:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            continue
        values[field.name] = _value(field)
    return model._default_manager.create(**values)


def admin_rows() -> dict[type[models.Model], models.Model]:
    """model -> one stored row, for every model registered in the admin site."""
    return {model: row_for(model) for model in admin.site._registry}
