"""Stripe's event destination for thin (v2) events: meter error reports."""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from stripe import SignatureVerificationError

from billing_project import stripe_api
from billing_project.stripe_signature import livemode_problem, signature_timestamp_problem

from .meter_errors import meter_error_report_record

MAX_BYTES = 64 * 1024  # a thin notification is a few hundred bytes


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
class StripeEventDestinationView(View):
    """400 unless signed with the destination's secret (nothing stored); 200 once recorded."""

    def post(self, request: HttpRequest) -> HttpResponse:
        if len(request.body) > MAX_BYTES:
            return HttpResponse(f"payload larger than {MAX_BYTES} bytes", status=413)
        problem = signature_timestamp_problem(request.headers.get("stripe-signature", ""))
        if problem:
            return HttpResponseBadRequest(problem)
        try:
            notification = stripe_api.client().parse_event_notification(
                request.body.decode("utf-8", errors="replace"),
                request.headers.get("stripe-signature"),
                settings.STRIPE_EVENT_DESTINATION_SECRET,
            )
        except SignatureVerificationError:
            return HttpResponseBadRequest("signature not valid for this event destination")
        except (ValueError, KeyError, TypeError):
            return HttpResponseBadRequest("not a Stripe thin event notification")
        problem = livemode_problem(request.body, livemode=settings.STRIPE_LIVE_MODE)
        if problem:
            return HttpResponseBadRequest(problem)
        meter_error_report_record(event_id=notification.id, event_type=notification.type)
        return HttpResponse("ok")
