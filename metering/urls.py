"""Routes of metering: the usage API (`POST /usage`) and Stripe's event destination."""

from django.urls import path

from .api import UsageView
from .views import StripeEventDestinationView

urlpatterns = [
    path("usage", UsageView.as_view(), name="usage"),
    path(
        "stripe/events/",
        StripeEventDestinationView.as_view(),
        name="stripe-event-destination",
    ),
]
