from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from cohorts.permissions import AUDITOR_GROUP, OPERATOR_EXTRA, OPERATOR_GROUP


@pytest.mark.django_db
def test_setup_groups_gives_the_auditor_only_view_permissions_and_is_idempotent():
    out = StringIO()
    call_command("setup_groups", stdout=out)
    call_command("setup_groups", stdout=out)
    auditor = Group.objects.get(name=AUDITOR_GROUP)
    operator = Group.objects.get(name=OPERATOR_GROUP)
    auditor_codes = set(auditor.permissions.values_list("codename", flat=True))
    assert auditor_codes and all(code.startswith("view_") for code in auditor_codes)
    assert {"view_cohort", "view_auditentry", "view_invoicedelivery"} <= auditor_codes
    operator_codes = set(operator.permissions.values_list("codename", flat=True))
    assert operator_codes - auditor_codes == {name.split(".")[1] for name in OPERATOR_EXTRA}
    assert {"operate_cohort", "change_invoicedelivery", "change_driftrecord"} <= operator_codes
    assert not any(
        code.startswith("delete_") and code != "delete_managedjob" for code in operator_codes
    )
    assert Group.objects.filter(name__in=[AUDITOR_GROUP, OPERATOR_GROUP]).count() == 2
    assert "updated 'Billing auditor'" in out.getvalue()


@pytest.mark.django_db
def test_setup_groups_dry_run_writes_nothing():
    out = StringIO()
    call_command("setup_groups", dry_run=True, stdout=out)
    assert "Dry run" in out.getvalue()
    assert not Group.objects.exists()
