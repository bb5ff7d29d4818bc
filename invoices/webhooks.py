"""Mailgun's tracking webhook: Anymail's view, refusing malformed bodies with 400.

Anymail checks the signature of a JSON body but answers 500 when the body is JSON of another
shape (a list, a string, a signature that is not an object). Every such body is refused here
before Anymail reads it; Anymail's own checks then apply unchanged.
"""

import json

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.webhooks.mailgun import MailgunTrackingWebhookView


def _is_object(value) -> bool:
    return isinstance(value, dict)


class MailgunTrackingView(MailgunTrackingWebhookView):
    def validate_request(self, request) -> None:
        if request.content_type == "application/json":
            try:
                payload = json.loads(request.body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                payload = None
            if not (
                _is_object(payload)
                and _is_object(payload.get("signature"))
                and _is_object(payload.get("event-data"))
            ):
                raise AnymailWebhookValidationFailure(
                    "Mailgun webhook body must be a JSON object with `signature` and "
                    "`event-data` objects"
                )
        super().validate_request(request)
