"""`POST /usage`: producers report impression counts per account, UTC day and type.

One item (an object) or a batch (a list of up to 1,000 objects). Each item is answered on its
own: `created`, `duplicate` (same key and quantity), `corrected` (a correction stored as a new
revision), `conflict` (same key, different quantity) or `invalid` (field -> reason); a bad item
never stops the others. A single item answers 201 / 200 / 409 / 400; a batch answers 200 with
one result per item. Request-level problems answer `{"error": {"code", "message", "field"}}`:
a duplicate key in one object or nesting deeper than 4 is refused (400), and each producer
token may send `USAGE_REQUESTS_PER_MINUTE` requests a minute (429 with `Retry-After` above it).
"""

from collections import Counter

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .serializers import (
    MAX_ITEMS,
    MAX_QUANTITY,
    ErrorSerializer,
    UsageBatchResultSerializer,
    UsageResultSerializer,
    usage_item_parse,
)
from .usage_models import ProducerToken
from .usage_parser import BodyRefused, UsageJSONParser
from .usage_services import (
    ItemResult,
    ItemStatus,
    UsageItem,
    producer_token_authenticate,
    usage_record_batch,
)
from .usage_throttle import usage_rate_take
from .usage_types import UsageType

SINGLE_STATUS = {
    ItemStatus.CREATED: status.HTTP_201_CREATED,
    ItemStatus.DUPLICATE: status.HTTP_200_OK,
    ItemStatus.CORRECTED: status.HTTP_200_OK,
    ItemStatus.CONFLICT: status.HTTP_409_CONFLICT,
    ItemStatus.INVALID: status.HTTP_400_BAD_REQUEST,
}


class ProducerTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>`; the token is looked up by its SHA-256."""

    keyword = "bearer"

    def authenticate(self, request: Request) -> tuple[None, ProducerToken] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        raw = raw.strip()
        if scheme.lower() != self.keyword or not raw or " " in raw:
            raise exceptions.AuthenticationFailed(
                "malformed Authorization header: send 'Authorization: Bearer <producer token>'",
                code="invalid_token",
            )
        token = producer_token_authenticate(raw)
        if token is None:
            raise exceptions.AuthenticationFailed(
                "invalid or revoked producer token", code="invalid_token"
            )
        return None, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="usage"'


class ProducerTokenScheme(OpenApiAuthenticationExtension):
    target_class = ProducerTokenAuthentication
    name = "producerToken"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A producer token created in the admin (shown once).",
        }


class HasProducerToken(BasePermission):
    message = "a producer token is required: send 'Authorization: Bearer <producer token>'"
    code = "not_authenticated"

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, ProducerToken)


_ERRORS = {
    "400": OpenApiResponse(
        PolymorphicProxySerializer(
            component_name="UsageBadRequest",
            serializers=[ErrorSerializer, UsageResultSerializer],
            resource_type_field_name=None,
        ),
        description=(
            "Malformed JSON, a duplicate key in one object, nesting deeper than 4, a body that "
            "is neither an object nor a list, an empty list; or, for a single item, the "
            "item's result with status `invalid` and `errors` naming each field (unknown "
            "acct_id, bad type, month-form period, negative or fractional quantity, a "
            "day more than 400 days ago, a quantity above 10**12, …)."
        ),
    ),
    "429": OpenApiResponse(
        ErrorSerializer,
        description="More requests this minute than the token may send; see `Retry-After`.",
    ),
    "401": OpenApiResponse(ErrorSerializer, description="No token, or an invalid/revoked one."),
    "409": OpenApiResponse(
        UsageResultSerializer,
        description="Single item: the key is stored with another quantity (`stored_quantity`).",
    ),
    "413": OpenApiResponse(
        ErrorSerializer, description="More than 1,000 items, or a body over the upload limit."
    ),
    "415": OpenApiResponse(ErrorSerializer, description="The body is not application/json."),
}

_ITEM_SCHEMA = {
    "type": "object",
    "required": ["acct_id", "period", "type", "quantity"],
    "additionalProperties": False,
    "properties": {
        "acct_id": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
        "period": {"type": "string", "format": "date", "description": "UTC day, YYYY-MM-DD"},
        "type": {"type": "string", "enum": UsageType.values},
        "quantity": {"type": "integer", "minimum": 0, "maximum": MAX_QUANTITY},
        "correction": {
            "type": "boolean",
            "default": False,
            "description": "Replace a stored quantity; a new revision sends only the difference.",
        },
    },
}
_REQUEST_SCHEMA = {
    "oneOf": [
        _ITEM_SCHEMA,
        {"type": "array", "items": _ITEM_SCHEMA, "minItems": 1, "maxItems": MAX_ITEMS},
    ]
}


class UsageView(APIView):
    authentication_classes = [ProducerTokenAuthentication]
    permission_classes = [HasProducerToken]
    parser_classes = [UsageJSONParser]
    renderer_classes = [JSONRenderer]
    throttle_classes: list = []

    @extend_schema(
        operation_id="usage_record",
        summary="Record usage (one item or up to 1,000)",
        description=__doc__,
        request={"application/json": _REQUEST_SCHEMA},
        responses={
            "200": OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="UsageOk",
                    serializers=[UsageBatchResultSerializer, UsageResultSerializer],
                    resource_type_field_name=None,
                ),
                description=(
                    "A batch: one result per item, in request order. A single item: "
                    "`duplicate` or `corrected`, with the item's result."
                ),
            ),
            "201": OpenApiResponse(UsageResultSerializer, description="Single item: created."),
            **_ERRORS,
        },
        examples=[
            OpenApiExample(
                "one item",
                value={"acct_id": 1042, "period": "2026-01-15", "type": "ST", "quantity": 125000},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        wait = usage_rate_take(token=request.auth)
        if wait is not None:
            response = _error(
                429,
                "rate_limited",
                f"more than {settings.USAGE_REQUESTS_PER_MINUTE} requests this minute for this "
                f"token: retry in {wait} s",
            )
            response["Retry-After"] = str(wait)
            return response
        try:
            body = request.data
        except BodyRefused as exc:
            return _error(400, exc.refusal_code, exc.message, field=exc.field)
        except exceptions.ParseError as exc:
            return _error(400, "malformed_json", f"the body is not valid JSON: {exc.detail}")
        except RequestDataTooBig:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return _error(413, "too_large", f"the body is larger than {limit:,} bytes")
        if isinstance(body, dict):
            return self._single(body, request.auth)
        if not isinstance(body, list):
            return _error(400, "invalid_body", "the body must be a JSON object or a list of them")
        if not body:
            return _error(400, "empty_batch", "the list holds no items")
        if len(body) > MAX_ITEMS:
            return _error(
                413,
                "too_many_items",
                f"at most {MAX_ITEMS:,} items per request (got {len(body):,})",
            )
        results = _record(body, request.auth)
        counts = Counter(result.status for result in results)
        return Response(
            {
                "results": [result.as_dict() for result in results],
                "counts": {
                    name: counts.get(name, 0)
                    for name in (
                        ItemStatus.CREATED,
                        ItemStatus.DUPLICATE,
                        ItemStatus.CORRECTED,
                        ItemStatus.CONFLICT,
                        ItemStatus.INVALID,
                    )
                },
            }
        )

    def _single(self, body: dict, producer: ProducerToken) -> Response:
        (result,) = _record([body], producer)
        return Response(result.as_dict(), status=SINGLE_STATUS[result.status])

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            message = (
                HasProducerToken.message
                if isinstance(exc, exceptions.NotAuthenticated)
                else str(exc.detail)
            )
            response = _error(401, "not_authenticated", message)
            response["WWW-Authenticate"] = 'Bearer realm="usage"'
            return response
        if isinstance(exc, exceptions.PermissionDenied):
            return _error(401, "not_authenticated", HasProducerToken.message)
        if isinstance(exc, exceptions.APIException):
            code = exc.get_codes() if isinstance(exc.get_codes(), str) else "invalid"
            return _error(exc.status_code, code, str(exc.detail))
        return super().handle_exception(exc)


def _record(raw_items: list, producer: ProducerToken) -> list[ItemResult]:
    parsed: list[UsageItem | ItemResult] = []
    for index, raw in enumerate(raw_items):
        item = usage_item_parse(raw, index)
        if isinstance(item, dict):
            parsed.append(ItemResult(index, ItemStatus.INVALID, errors=item))
        else:
            parsed.append(item)
    valid = [item for item in parsed if isinstance(item, UsageItem)]
    recorded = iter(usage_record_batch(items=valid, producer=producer)) if valid else iter(())
    return [item if isinstance(item, ItemResult) else next(recorded) for item in parsed]


def _error(code_status: int, code: str, message: str, *, field: str | None = None) -> Response:
    error = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return Response({"error": error}, status=code_status)
