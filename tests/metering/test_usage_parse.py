"""Item checks of `POST /usage`: any JSON value gives an item or reasons, never an exception."""

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from metering.serializers import MAX_PERIOD_AGE, MAX_QUANTITY, usage_item_parse
from metering.usage_services import UsageItem

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
TODAY = date(2026, 3, 15)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "acct_id": json_values,
            "period": json_values | st.dates().map(date.isoformat),
            "type": json_values | st.sampled_from(["ST", "RM", "CV"]),
            "quantity": json_values,
            "correction": json_values,
        },
    )
)
def test_any_item_gives_a_usage_item_or_named_reasons(raw):
    parsed = usage_item_parse(raw, 0, today=TODAY)
    if isinstance(parsed, UsageItem):
        assert parsed.usage_type in ("ST", "RM", "CV")
        assert parsed.quantity >= 0 and isinstance(parsed.quantity, int)
        assert TODAY - MAX_PERIOD_AGE <= parsed.period <= TODAY
        assert parsed.quantity <= MAX_QUANTITY
    else:
        assert parsed and all(isinstance(reason, str) and reason for reason in parsed.values())
        assert set(parsed) <= {"item", "acct_id", "period", "type", "quantity", "correction"}


@given(
    st.integers(min_value=0, max_value=MAX_QUANTITY),
    st.dates(min_value=TODAY - MAX_PERIOD_AGE, max_value=TODAY),
)
def test_every_whole_quantity_and_past_day_is_accepted(quantity, day):
    raw = {"acct_id": 7, "period": day.isoformat(), "type": "CV", "quantity": quantity}
    assert usage_item_parse(raw, 3, today=TODAY) == UsageItem(3, 7, day, "CV", quantity)


@given(
    st.integers(min_value=MAX_QUANTITY + 1),
    st.dates(max_value=TODAY - MAX_PERIOD_AGE - timedelta(days=1)),
)
def test_an_absurd_quantity_or_a_day_before_the_window_is_named(quantity, day):
    raw = {"acct_id": 7, "period": day.isoformat(), "type": "CV", "quantity": quantity}
    errors = usage_item_parse(raw, 0, today=TODAY)
    assert set(errors) == {"period", "quantity"}
    assert "days ago" in errors["period"]
    assert "at most 1,000,000,000,000" in errors["quantity"]
