"""Core HTTP endpoints other than the health check."""

from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from djstripe.models import WebhookEndpoint

from .stripe_signature import livemode_problem, signature_timestamp_problem
from .webhook_intake import webhook_trigger_record

# Stripe's events are a few kilobytes (an invoice embeds at most ten lines); far above that is
# not Stripe.
STRIPE_WEBHOOK_MAX_BYTES = 1024 * 1024


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


@method_decorator(transaction.non_atomic_requests, name="dispatch")
@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
class StripeWebhookView(View):
    """Stripe's events: 400 unless signed with the endpoint's secret, not signed in the future
    and of the endpoint's mode (nothing stored), 413 when far larger than any event; 200 once
    stored and queued."""

    def post(self, request: HttpRequest, uuid) -> HttpResponse:
        if "stripe-signature" not in request.headers:
            return HttpResponseBadRequest("Stripe-Signature header missing")
        if _content_length(request) > STRIPE_WEBHOOK_MAX_BYTES:
            return HttpResponse(f"payload larger than {STRIPE_WEBHOOK_MAX_BYTES} bytes", status=413)
        problem = signature_timestamp_problem(request.headers["stripe-signature"])
        if problem:
            return HttpResponseBadRequest(problem)
        endpoint = get_object_or_404(WebhookEndpoint, djstripe_uuid=uuid)
        problem = livemode_problem(request.body, livemode=bool(endpoint.livemode))
        if problem:
            return HttpResponseBadRequest(problem)
        trigger = webhook_trigger_record(request=request, endpoint=endpoint)
        if not trigger.valid:
            return HttpResponseBadRequest("signature or payload not valid for this endpoint")
        return HttpResponse(str(trigger.pk))
