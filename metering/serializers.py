"""`POST /usage` request and response shapes.

Items are checked by `usage_item_parse` (a batch holds up to 1,000 of them, so the check is
plain Python with one message per field); the DRF serializers below describe the same shapes
for the OpenAPI schema.
"""

import re
from datetime import date, timedelta
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from .usage_services import ItemStatus, UsageItem
from .usage_types import UsageType

MAX_ITEMS = 1000
# Far above any account's impressions in one day (the largest legacy day is under 10**9),
# far below what Stripe's meter and our BigInteger sums can hold.
MAX_QUANTITY = 10**12
# Usage is posted as it accrues and corrected within the billing cycle; a day more than this
# far back is a producer's mistake (a default date, a wrong year), not late usage.
MAX_PERIOD_AGE = timedelta(days=400)
ITEM_FIELDS = ("acct_id", "period", "type", "quantity", "correction")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]")
TYPES = ", ".join(UsageType.values)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _acct_id(value: Any) -> str | None:
    if not _is_int(value) or value <= 0 or value > 2**31 - 1:
        return "must be a positive integer (the legacy account id)"
    return None


def _period(value: Any, today: date) -> tuple[date | None, str | None]:
    if not isinstance(value, str):
        return None, "must be a string: a UTC day YYYY-MM-DD"
    if _MONTH.match(value):
        return None, (
            f"must be a UTC day YYYY-MM-DD, not a month ('{value}'): post usage per day as it "
            "accrues"
        )
    if _TIMESTAMP.match(value):
        return None, f"must be a UTC day YYYY-MM-DD, not a timestamp ('{value[:40]}')"
    if not _DAY.match(value):
        return None, f"must be a UTC day YYYY-MM-DD (got '{value[:40]}')"
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None, f"'{value}' is not a calendar day"
    if day > today:
        return None, f"{value} is in the future (today is {today:%Y-%m-%d} UTC)"
    if day < today - MAX_PERIOD_AGE:
        return None, (
            f"{value} is more than {MAX_PERIOD_AGE.days} days ago (today is {today:%Y-%m-%d} UTC)"
        )
    return day, None


def _type(value: Any) -> str | None:
    if value not in UsageType.values:
        shown = repr(value)[:40]
        return f"must be one of {TYPES} (got {shown})"
    return None


def _quantity(value: Any) -> str | None:
    if isinstance(value, float):
        return f"must be a whole number (got {value!r})"
    if not _is_int(value):
        return "must be a JSON integer"
    if value < 0:
        return f"must not be negative (got {value})"
    if value > MAX_QUANTITY:
        return f"must be at most {MAX_QUANTITY:,} per account, day and type (got {value:,})"
    return None


def usage_item_parse(raw: Any, index: int, *, today: date | None = None) -> UsageItem | dict:
    """A `UsageItem`, or `{field: reason}` naming every field at fault."""
    if not isinstance(raw, dict):
        return {"item": "must be a JSON object with acct_id, period, type and quantity"}
    today = today or timezone.now().date()
    errors: dict[str, str] = {}
    unknown = sorted(set(raw) - set(ITEM_FIELDS))
    if unknown:
        errors["item"] = f"unknown field(s): {', '.join(str(k)[:40] for k in unknown)}"
    for name in ("acct_id", "period", "type", "quantity"):
        if name not in raw:
            errors[name] = "is required"
    if "acct_id" in raw and (problem := _acct_id(raw["acct_id"])):
        errors["acct_id"] = problem
    day = None
    if "period" in raw:
        day, problem = _period(raw["period"], today)
        if problem:
            errors["period"] = problem
    if "type" in raw and (problem := _type(raw["type"])):
        errors["type"] = problem
    if "quantity" in raw and (problem := _quantity(raw["quantity"])):
        errors["quantity"] = problem
    correction = raw.get("correction", False)
    if not isinstance(correction, bool):
        errors["correction"] = "must be true or false"
    if errors:
        return errors
    return UsageItem(
        index=index,
        acct_id=raw["acct_id"],
        period=day,
        usage_type=raw["type"],
        quantity=raw["quantity"],
        correction=correction,
    )


# --- Schema -------------------------------------------------------------------------------------


class UsageResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the item in the request.")
    status = serializers.ChoiceField(
        choices=[
            ItemStatus.CREATED,
            ItemStatus.DUPLICATE,
            ItemStatus.CORRECTED,
            ItemStatus.CONFLICT,
            ItemStatus.INVALID,
        ]
    )
    key = serializers.CharField(required=False, help_text="{acct_id}:{period}:{type}")
    quantity = serializers.IntegerField(required=False)
    stored_quantity = serializers.IntegerField(
        required=False, help_text="On conflict: the quantity already recorded."
    )
    revision = serializers.IntegerField(required=False)
    errors = serializers.DictField(
        child=serializers.CharField(), required=False, help_text="Field -> reason."
    )


class UsageCountsSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    corrected = serializers.IntegerField()
    conflict = serializers.IntegerField()
    invalid = serializers.IntegerField()


class UsageBatchResultSerializer(serializers.Serializer):
    results = UsageResultSerializer(many=True)
    counts = UsageCountsSerializer()


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(required=False)


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
