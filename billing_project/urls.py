from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from invoices.webhooks import MailgunTrackingView

from .health import healthz
from .views import StripeWebhookView

urlpatterns = [
    path("admin/", admin.site.urls),
    # Ours first: it answers at the path dj-stripe's URL name reverses to (see views.py).
    path("stripe/webhook/<uuid:uuid>/", StripeWebhookView.as_view(), name="stripe-webhook"),
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
    # Mailgun's tracking webhook only: Anymail's other providers (and Mailgun inbound, which
    # is not used) are not routed.
    path(
        "anymail/",
        include(
            (
                [
                    path(
                        "mailgun/tracking/",
                        MailgunTrackingView.as_view(),
                        name="mailgun_tracking_webhook",
                    )
                ],
                "anymail",
            )
        ),
    ),
    path("", include("metering.urls")),
    path("healthz", healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
]
