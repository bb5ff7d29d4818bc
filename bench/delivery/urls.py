"""The app's URLs and dj-stripe's stock synchronous webhook view, for the delivery benchmark."""

from django.urls import path
from djstripe.views import ProcessWebhookView

from billing_project.urls import urlpatterns as app_urlpatterns

urlpatterns = [
    path("bench/djstripe/webhook/<uuid:uuid>/", ProcessWebhookView.as_view()),
    *app_urlpatterns,
]
