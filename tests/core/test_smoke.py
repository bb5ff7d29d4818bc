import pytest
from django.db import connections


@pytest.mark.django_db(databases=["default", "legacy"])
def test_both_databases_are_postgresql_with_the_legacy_schema():
    assert connections["default"].vendor == "postgresql"
    with connections["legacy"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM billing_invoice")
        assert cursor.fetchone() == (0,)
