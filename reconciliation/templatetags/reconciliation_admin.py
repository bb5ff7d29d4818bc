"""The reconciliation page's chart: per cohort, one bar per day of the last 60 days, split
into clean, pending and drifting accounts (inline SVG, no script, no external asset)."""

from typing import Any

from django import template
from django.utils import timezone

from reconciliation.selectors import drift_chart

register = template.Library()

BAR_WIDTH = 8
BAR_GAP = 2
CHART_HEIGHT = 60
COLOURS = {"clean": "#059669", "pending": "#d97706", "drift": "#dc2626", "none": "#e5e7eb"}


@register.simple_tag
def drift_chart_panel(days: int = 60) -> list[dict[str, Any]]:
    """`{% drift_chart_panel as charts %}`: per cohort, the bars to draw."""
    charts = []
    for chart in drift_chart(today=timezone.now().date(), days=days):
        scale = CHART_HEIGHT / (chart.max_checked or 1)
        bars = []
        for index, day in enumerate(chart.days):
            x = index * (BAR_WIDTH + BAR_GAP)
            clean = day.checked - day.drift - day.pending
            segments, y = [], CHART_HEIGHT
            for name, count in (("clean", clean), ("pending", day.pending), ("drift", day.drift)):
                height = round(count * scale, 1)
                if height:
                    y -= height
                    segments.append({"y": y, "height": height, "colour": COLOURS[name]})
            if not day.checked:
                segments.append({"y": CHART_HEIGHT - 2, "height": 2, "colour": COLOURS["none"]})
            bars.append(
                {
                    "x": x,
                    "segments": segments,
                    "title": f"{day.day:%Y-%m-%d}: {day.checked} checked, {day.drift} drift, "
                    f"{day.pending} pending",
                    "drift": day.drift,
                }
            )
        charts.append(
            {
                "label": chart.label,
                "bars": bars,
                "width": len(bars) * (BAR_WIDTH + BAR_GAP),
                "height": CHART_HEIGHT,
                "bar_width": BAR_WIDTH,
                "drift_days": sum(1 for d in chart.days if d.drift),
                "first": chart.days[0].day,
                "last": chart.days[-1].day,
            }
        )
    return charts
