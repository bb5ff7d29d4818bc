import pytest


@pytest.fixture
def server(stripe_server):
    stripe_server.reset()
    stripe_server.webhooks.auto = False
    return stripe_server


@pytest.fixture
def endpoint_url():
    from io import StringIO

    from django.core.management import call_command

    from billing_project.stripe_webhook import webhook_endpoint_url

    call_command("setup_webhook_endpoint", base_url="http://testserver", stdout=StringIO())
    return webhook_endpoint_url("http://testserver").removeprefix("http://testserver")
