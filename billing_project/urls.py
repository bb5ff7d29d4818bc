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
    # Ours first: Anymail's Mailgun tracking view with malformed bodies refused (400, not 500).
    path(
        "anymail/mailgun/tracking/",
        MailgunTrackingView.as_view(),
        name="mailgun_tracking_webhook",
    ),
    path("anymail/", include("anymail.urls")),
    path("", include("metering.urls")),
    path("healthz", healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
]
