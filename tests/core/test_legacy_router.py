"""The legacy billing database is read-only for the application."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing_project.errors import LegacyWriteRefused
from reconciliation.legacy import LegacyAccount, LegacyInvoice
from reconciliation.routers import legacy_writes_allowed
from tests.core.test_settings import PRODUCTION_ENV, run_django
from tests.harness.qcluster import database_url

CREATED = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def make_account(acct_id: int = 9001) -> LegacyAccount:
    with legacy_writes_allowed():
        return LegacyAccount.objects.create(
            acct_id=acct_id, acct_name="Contoso Media", created=CREATED
        )


@pytest.mark.django_db(databases=["default", "legacy"])
def test_router_refuses_orm_writes_when_the_legacy_database_is_not_writable(settings):
    account = make_account()
    settings.LEGACY_DATABASE_WRITABLE = False
    with pytest.raises(LegacyWriteRefused, match="billing_invoice"):
        LegacyInvoice.objects.create(
            inv_uuid="6f1c7a52-0000-4000-8000-000000000001",
            account=account,
            service_month=date(2026, 1, 1),
            total=Decimal("10.00"),
            status="paid",
            created=CREATED,
        )
    with pytest.raises(LegacyWriteRefused):
        LegacyAccount.objects.filter(acct_id=account.acct_id).update(acct_name="Changed")
    with pytest.raises(LegacyWriteRefused):
        account.delete()
    assert LegacyAccount.objects.get(acct_id=account.acct_id).acct_name == "Contoso Media"


@pytest.mark.django_db(databases=["default", "legacy"])
def test_legacy_writes_allowed_block_lets_the_demo_and_tests_write(settings):
    settings.LEGACY_DATABASE_WRITABLE = False
    with legacy_writes_allowed():
        LegacyAccount.objects.create(acct_id=9002, acct_name="Fabrikam", created=CREATED)
    assert LegacyAccount.objects.filter(acct_id=9002).exists()
    with pytest.raises(LegacyWriteRefused):
        LegacyAccount.objects.create(acct_id=9003, acct_name="Tailspin", created=CREATED)


@pytest.mark.django_db(databases=["default", "legacy"])
def test_production_settings_refuse_legacy_writes_in_the_router_and_in_postgresql():
    """A fresh process with production settings on the real legacy database: the ORM write
    is refused by the router, and a raw INSERT by PostgreSQL's read-only session."""
    env = {**PRODUCTION_ENV, "LEGACY_DATABASE_URL": database_url("legacy")}
    script = """
import json
from datetime import datetime, UTC
from django.db import connections
from billing_project.errors import LegacyWriteRefused
from reconciliation.legacy import LegacyAccount
outcome = {"count": LegacyAccount.objects.count()}
try:
    LegacyAccount.objects.create(
        acct_id=9100, acct_name="X", created=datetime(2026, 2, 2, 9, 30, tzinfo=UTC)
    )
    outcome["orm"] = "written"
except LegacyWriteRefused as exc:
    outcome["orm"] = "refused: " + str(exc)
try:
    with connections["legacy"].cursor() as cursor:
        cursor.execute(
            "INSERT INTO account (acct_id, acct_name, created) VALUES (9101, 'Y', now())"
        )
    outcome["sql"] = "written"
except Exception as exc:
    outcome["sql"] = "refused: " + type(exc).__name__ + " " + str(exc).splitlines()[0]
print(json.dumps(outcome))
"""
    result = run_django(script, env)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["orm"].startswith("refused: refusing to write account")
    assert outcome["sql"].startswith("refused:")
    assert "read-only transaction" in outcome["sql"]
    assert not LegacyAccount.objects.filter(acct_id__in=[9100, 9101]).exists()
