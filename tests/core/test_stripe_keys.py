from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from djstripe.models import APIKey

pytestmark = pytest.mark.django_db

OLD = "sk_test_RotatedAway00000000000000000000"


def _key(secret: str) -> APIKey:
    return APIKey.objects.create(secret=secret, livemode=False, name="")


def test_prune_deletes_every_stored_key_but_the_configured_one():
    _key(settings.STRIPE_SECRET_KEY)
    _key(OLD)
    out = StringIO()
    call_command("stripe_api_keys_prune", stdout=out)
    assert list(APIKey.objects.values_list("secret", flat=True)) == [settings.STRIPE_SECRET_KEY]
    assert "Deleted 1 stored key(s)" in out.getvalue()
    assert OLD not in out.getvalue()  # only a masked form is printed


def test_dry_run_deletes_nothing():
    _key(OLD)
    out = StringIO()
    call_command("stripe_api_keys_prune", dry_run=True, stdout=out)
    assert APIKey.objects.filter(secret=OLD).exists()
    assert "Would delete 1" in out.getvalue()
