"""The admin index's delivery funnel: this month's deliveries per state, each a link into the
filtered changelist. A template tag keeps the panel to the template that shows it: no context
processor runs on every page and the admin site needs no custom index view."""

from typing import Any

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from invoices.admin import STATE_COLOURS, month_label, month_param
from invoices.models import InvoiceDelivery
from invoices.selectors import delivery_funnel

register = template.Library()


@register.simple_tag(takes_context=True)
def delivery_funnel_panel(context: template.Context) -> dict[str, Any] | None:
    """`{% delivery_funnel_panel as funnel %}`: None for a user who may not see deliveries."""
    user = context["request"].user
    if not (
        user.has_perm("invoices.view_invoicedelivery")
        or user.has_perm("invoices.change_invoicedelivery")
    ):
        return None
    month = timezone.localdate().replace(day=1)
    counts = delivery_funnel(month=month)
    top = max(count for _, count in counts) or 1
    changelist = reverse("admin:invoices_invoicedelivery_changelist")
    labels = dict(InvoiceDelivery.State.choices)
    return {
        "month_label": month_label(month),
        "total": sum(count for _, count in counts),
        "url": f"{changelist}?{urlencode({'month': month_param(month)})}",
        "rows": [
            {
                "state": state,
                "label": labels[state],
                "count": count,
                "colour": STATE_COLOURS.get(state, "#6b7280"),
                "width": round(count * 100 / top),
                "url": f"{changelist}?{urlencode({'month': month_param(month), 'state': state})}",
            }
            for state, count in counts
        ],
    }
