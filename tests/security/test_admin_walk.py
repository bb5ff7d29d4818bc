"""Every admin URL walked as a staff user without groups, as an operator and with bad ids.

Generic over `admin.site._registry` (as the auditor suite): a staff user with no permission
is refused (403) every page and every custom view, GET and POST; an operator gets no 5xx
anywhere, is refused (403) the forms of models it may not change, and cannot move an
account's billing owner, email or Stripe customer through the change form; ids that are not
ids answer 4xx; the legacy tables answer read-only pages and 403 with the production router.
"""

import re
from io import StringIO

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from cohorts.permissions import OPERATOR_GROUP
from metering.models import BillingAccount
from reconciliation.legacy import LegacyInvoice

from .db_snapshot import snapshot
from .test_auditor_cannot_change_anything import (
    _admin_url,
    _custom_payload,
    _form_data,
    _label,
    all_custom_urls,
    all_models,
    rows,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.django_db(databases=["default", "legacy"])

PAGES = ["changelist", "add", "change", "history", "delete"]


def _client(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


@pytest.fixture
def nobody():
    return get_user_model().objects.create_user(
        "nobody", "nobody@adventive.com", "correct-horse-9", is_staff=True
    )


@pytest.fixture
def operator():
    call_command("setup_groups", stdout=StringIO())
    user = get_user_model().objects.create_user(
        "operator", "operator@adventive.com", "correct-horse-9", is_staff=True
    )
    user.groups.add(Group.objects.get(name=OPERATOR_GROUP))
    return get_user_model().objects.get(pk=user.pk)


def _page_url(model, view: str, row) -> str:
    args = () if view in ("changelist", "add") else (quote(row.pk),)
    return _admin_url(model, view, *args)


def _custom_url(model, route: str, fill: dict, pk: str) -> str:
    values = {k: v.format(pk=pk) for k, v in fill.items()}
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m[1]]), route)
    return _admin_url(model, "changelist") + path


# --- a staff user without groups -------------------------------------------------------------


@pytest.mark.parametrize("view", PAGES)
@pytest.mark.parametrize("model", all_models())
def test_staff_without_groups_is_refused_every_page(model, view, rows, nobody):  # noqa: F811
    client = _client(nobody)
    url = _page_url(model, view, rows[model])
    before = snapshot()
    answers = {
        "GET": client.get(url).status_code,
        "POST": client.post(url, {**_form_data(rows[model]), "post": "yes"}).status_code,
    }
    assert answers == {"GET": 403, "POST": 403}, url
    assert before.changes(snapshot()) == {}


@pytest.mark.calendar  # the month-end form offers the months before today
@pytest.mark.parametrize(("model", "route", "fill"), all_custom_urls())
def test_staff_without_groups_is_refused_every_custom_view(
    model,
    route,
    fill,
    rows,  # noqa: F811
    nobody,
):
    client = _client(nobody)
    url = _custom_url(model, route, fill, quote(rows[model].pk))
    before = snapshot()
    got = client.get(url).status_code
    posted = client.post(url, _custom_payload(model, fill, rows)).status_code
    assert got in (403, 405), f"GET {url}: {got}"
    assert posted == 403, f"POST {url}: {posted}"
    assert before.changes(snapshot()) == {}


@pytest.mark.calendar
def test_control_a_superuser_opens_the_month_end_report(admin_user):
    """The refusal above is the permission, not a broken page."""
    response = _client(admin_user).get(reverse("admin:exports_month_end_report"))
    assert response.status_code == 200
    assert b"Month-end report" in response.content


# --- an operator -------------------------------------------------------------------------


@pytest.mark.parametrize("view", PAGES)
@pytest.mark.parametrize("model", all_models())
def test_operator_gets_no_server_error_and_403_without_the_right(model, view, rows, operator):  # noqa: F811
    client = _client(operator)
    row = rows[model]
    url = _page_url(model, view, row)
    got = client.get(url)
    assert got.status_code < 500, f"GET {url}: {got.status_code}"
    codename = {"add": "add", "delete": "delete", "change": "change"}.get(view)
    if codename is None:
        return
    may = operator.has_perm(f"{model._meta.app_label}.{codename}_{model._meta.model_name}")
    posted = client.post(url, {**_form_data(row), "post": "yes", "_save": "Save"})
    assert posted.status_code < 500, f"POST {url}: {posted.status_code}"
    if not may:
        assert posted.status_code == 403, f"POST {url} without {codename}: {posted.status_code}"


@pytest.mark.calendar
@pytest.mark.parametrize(("model", "route", "fill"), all_custom_urls())
def test_operator_opens_every_custom_view_without_a_server_error(
    model,
    route,
    fill,
    rows,  # noqa: F811
    operator,
):
    url = _custom_url(model, route, fill, quote(rows[model].pk))
    assert _client(operator).get(url).status_code < 500, url


ROUTING = {
    "billing_email": "attacker@evil.example",
    "billing_owner": BillingAccount.BillingOwner.STRIPE,
    "stripe_customer_id": "cus_Attacker0001",
}


def test_operator_cannot_change_routing_fields_through_the_change_form(operator):
    account = BillingAccount.objects.create(
        acct_id=7301,
        name="Harbour Freight",
        billing_email="ap@harbour.example",
        billing_owner=BillingAccount.BillingOwner.PARALLEL,
        stripe_customer_id="cus_Harbour0001",
    )
    url = _admin_url(BillingAccount, "change", account.pk)
    form = _client(operator).get(url)
    assert form.status_code == 200
    fields = form.context["adminform"].form.fields
    assert set(ROUTING).isdisjoint(fields), "routing fields are editable"
    data = {
        "name": "Harbour Freight Ltd",
        "address": "1 Quay",
        **ROUTING,
        "_save": "Save",
    }
    for inline in form.context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    response = _client(operator).post(url, data)
    assert response.status_code == 302, response.content[:500]
    account.refresh_from_db()
    assert account.name == "Harbour Freight Ltd"  # the form works: only routing is closed
    assert (account.billing_email, account.billing_owner, account.stripe_customer_id) == (
        "ap@harbour.example",
        BillingAccount.BillingOwner.PARALLEL,
        "cus_Harbour0001",
    )


# --- ids that are not ids ---------------------------------------------------------------------


@pytest.mark.parametrize("view", ["change", "history", "delete"])
@pytest.mark.parametrize("model", all_models())
def test_a_bad_id_is_never_a_server_error(model, view, admin_user):
    client = _client(admin_user)
    for bad in ("abc", "9" * 30, "%00", "-1"):
        url = _admin_url(model, view, bad)
        assert client.get(url).status_code < 500, url
        assert client.post(url, {"post": "yes"}).status_code < 500, url


@pytest.mark.calendar
@pytest.mark.parametrize(("model", "route", "fill"), all_custom_urls())
def test_a_bad_id_in_a_custom_view_is_never_a_server_error(
    model,
    route,
    fill,
    rows,  # noqa: F811
    admin_user,
):
    client = _client(admin_user)
    # Ids in the path that are not ids, and a real one with `account=abc` in the form.
    for pk in ("abc", "9" * 30, quote(rows[model].pk)):
        url = _custom_url(model, route, fill, pk)
        payload = {**_custom_payload(model, fill, rows), "account": "abc"}
        assert client.get(url).status_code < 500, url
        assert client.post(url, payload).status_code < 500, url


def test_legacy_invoices_are_read_only_pages_with_the_production_router(
    rows,  # noqa: F811
    admin_user,
    settings,
):
    settings.LEGACY_DATABASE_WRITABLE = False
    client = _client(admin_user)
    invoice = rows[LegacyInvoice]
    change = _admin_url(LegacyInvoice, "change", quote(invoice.pk))
    assert client.get(change).status_code == 200
    before = snapshot()
    for url in (
        _admin_url(LegacyInvoice, "add"),
        change,
        _admin_url(LegacyInvoice, "delete", quote(invoice.pk)),
    ):
        assert client.post(url, {**_form_data(invoice), "post": "yes"}).status_code == 403, url
    assert client.get(_admin_url(LegacyInvoice, "add")).status_code == 403
    assert before.changes(snapshot()) == {}


def test_every_registered_model_is_walked():
    labels = {_label(p.values[0]) for p in all_models()}
    assert {"metering.billingaccount", "metering.accountchange", "exports.exportrun"} <= labels
