"""`POST /usage` against its own OpenAPI schema (drf-spectacular), fuzzed by schemathesis:
no input makes it answer 5xx, and the answers match the documented statuses and shapes."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytest_plugins = ["tests.metering.usage_fixtures"]

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = get_wsgi_application()
usage_schema = schema.include(path="/usage")


@pytest.fixture
def keep_test_connection():
    """The WSGI app closes the database connection after each request, as in production; the
    test's transaction lives on that connection (Django's test client does the same)."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def test_the_schema_documents_usage_and_its_errors():
    operation = SchemaGenerator().get_schema(request=None, public=True)["paths"]["/usage"]["post"]
    assert set(operation["responses"]) >= {"200", "201", "400", "401", "409", "413", "415"}
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    array = body["oneOf"][1]
    assert (array["type"], array["maxItems"]) == ("array", 1000)
    item = body["oneOf"][0]
    assert item["properties"]["type"]["enum"] == ["ST", "RM", "CV"]
    assert item["properties"]["period"]["format"] == "date"
    assert operation["security"] == [{"producerToken": []}]


@pytest.mark.django_db
@usage_schema.parametrize()
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_input_makes_usage_answer_a_server_error(
    case, usage_token, usage_accounts, keep_test_connection
):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {usage_token}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )


@pytest.mark.django_db
def test_every_kind_of_answer_matches_the_documented_schema(
    usage_api, usage_accounts, keep_test_connection
):
    """The answers fuzzing rarely reaches (duplicate, conflict, correction) are checked too."""
    import jsonschema

    raw = SchemaGenerator().get_schema(request=None, public=True)
    responses = raw["paths"]["/usage"]["post"]["responses"]

    def check(response):
        body = responses[str(response.status_code)]["content"]["application/json"]["schema"]
        # The body's schema refers to the components: validate it inside a document that has them.
        schema = {"components": raw["components"], **body}
        jsonschema.Draft202012Validator(schema).validate(response.json())

    acct = usage_accounts[0].acct_id
    one = {"acct_id": acct, "period": "2026-01-15", "type": "ST", "quantity": 5}
    for body in (
        one,
        one,
        {**one, "quantity": 6},
        {**one, "quantity": 6, "correction": True},
        [one, {**one, "type": "XX"}],
        {**one, "type": "XX"},
        [],
    ):
        check(usage_api.post("/usage", body, format="json"))
