"""Where an account's invoices go changes only through the audited actions: a new billing email
waits for a second operator, and the next send before that still goes to the address on record.
"""

from io import StringIO

import pytest
import stripe as stripe_lib
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from billing_project.errors import BillingError, ConflictError
from cohorts.permissions import AUDITOR_GROUP, OPERATOR_GROUP
from invoices.models import InvoiceDelivery
from invoices.services import delivery_resend
from metering.account_changes import (
    account_customer_id_change,
    account_email_change_confirm,
    account_email_change_request,
)
from metering.models import AccountChange, BillingAccount
from tests.invoices.scenarios import billed_customer, deliver, finalized_event

pytestmark = pytest.mark.django_db

OLD, NEW = "ap@northwind.example", "accounts@northwind.example"
CHANGELIST = "/admin/metering/billingaccount/"
CHANGES = "/admin/metering/accountchange/"


def _user(name: str, group: str | None):
    user = get_user_model().objects.create_user(name, f"{name}@adventive.com", "x", is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return get_user_model().objects.get(pk=user.pk)


@pytest.fixture
def people():
    call_command("setup_groups", stdout=StringIO())
    return {
        "alice": _user("alice", OPERATOR_GROUP),
        "bob": _user("bob", OPERATOR_GROUP),
        "audrey": _user("audrey", AUDITOR_GROUP),
        "sam": _user("sam", None),
    }


@pytest.fixture
def server(stripe_server):
    stripe_server.reset()
    stripe_server.webhooks.auto = False
    return stripe_server


@pytest.fixture
def sent(client, server, mailgun, s3_bucket, django_capture_on_commit_callbacks):
    from billing_project.stripe_webhook import webhook_endpoint_url

    call_command("setup_webhook_endpoint", base_url="http://testserver", stdout=StringIO())
    url = webhook_endpoint_url("http://testserver").removeprefix("http://testserver")
    account, customer = billed_customer(email=OLD)
    event = finalized_event(server, customer.id)
    deliver(client, url, event, django_capture_on_commit_callbacks)
    delivery = InvoiceDelivery.objects.get(stripe_invoice_id=event["data"]["object"]["id"])
    assert delivery.state == InvoiceDelivery.State.SENT
    return account, delivery


def _as(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_a_new_email_is_used_only_after_a_second_operator_confirms(sent, people, mailgun):
    account, delivery = sent
    response = _as(people["alice"]).post(
        CHANGELIST,
        {
            "action": "request_email_change",
            ACTION_CHECKBOX_NAME: [account.pk],
            "apply": "yes",
            "value": NEW,
            "reason": "customer's AP team moved to a shared mailbox (ticket 4411)",
        },
    )
    assert response.status_code == 302, response.content[:400]
    change = AccountChange.objects.get()
    assert (change.status, change.before, change.after) == ("pending", OLD, NEW)
    assert BillingAccount.objects.get(pk=account.pk).billing_email == OLD

    delivery_resend(delivery_id=delivery.pk, request_key="before-confirmation")
    assert mailgun.messages[-1].to == [OLD]

    own = _as(people["alice"]).post(
        CHANGES, {"action": "confirm_email_changes", ACTION_CHECKBOX_NAME: [change.pk]}
    )
    assert any("a second person must confirm" in m for m in _messages(own))
    assert BillingAccount.objects.get(pk=account.pk).billing_email == OLD

    confirmed = _as(people["bob"]).post(
        CHANGES, {"action": "confirm_email_changes", ACTION_CHECKBOX_NAME: [change.pk]}
    )
    assert any(m.startswith("Applied") for m in _messages(confirmed))
    assert BillingAccount.objects.get(pk=account.pk).billing_email == NEW
    change.refresh_from_db()
    assert change.status == "applied"
    assert (change.requested_by, change.decided_by) == (people["alice"], people["bob"])
    assert change.requested_at <= change.decided_at
    assert change.reason.startswith("customer's AP team")

    delivery_resend(delivery_id=delivery.pk, request_key="after-confirmation")
    assert mailgun.messages[-1].to == [NEW]


def test_the_account_page_shows_the_audit(sent, people):
    account, _ = sent
    change = account_email_change_request(
        account=account, email=NEW, reason="new AP mailbox", by=people["alice"]
    )
    account_email_change_confirm(change_id=change.pk, by=people["bob"])
    page = _as(people["audrey"]).get(f"{CHANGELIST}{account.pk}/change/").content.decode()
    for text in (OLD, NEW, "new AP mailbox", "alice", "bob", "Applied"):
        assert text in page, text


@pytest.mark.parametrize("who", ["audrey", "sam"])
def test_only_an_operator_may_ask_or_confirm(people, who):
    account = BillingAccount.objects.create(acct_id=7302, name="Quay", billing_email=OLD)
    with pytest.raises(BillingError, match="only a billing operator"):
        account_email_change_request(account=account, email=NEW, reason="r", by=people[who])
    change = account_email_change_request(
        account=account, email=NEW, reason="r", by=people["alice"]
    )
    with pytest.raises(BillingError, match="only a billing operator"):
        account_email_change_confirm(change_id=change.pk, by=people[who])
    assert BillingAccount.objects.get(pk=account.pk).billing_email == OLD


def test_a_request_needs_a_reason_an_address_and_no_other_pending_one(people):
    account = BillingAccount.objects.create(acct_id=7303, name="Quay", billing_email=OLD)
    alice = people["alice"]
    with pytest.raises(BillingError) as no_reason:
        account_email_change_request(account=account, email=NEW, reason="  ", by=alice)
    assert no_reason.value.field == "reason"
    with pytest.raises(BillingError) as bad:
        account_email_change_request(account=account, email="not-an-address", reason="r", by=alice)
    assert bad.value.field == "email"
    account_email_change_request(account=account, email=NEW, reason="r", by=alice)
    with pytest.raises(ConflictError, match="already has an email change waiting"):
        account_email_change_request(account=account, email="x@y.example", reason="r", by=alice)


def test_a_confirmation_of_a_stale_request_is_refused(people):
    account = BillingAccount.objects.create(acct_id=7304, name="Quay", billing_email=OLD)
    first = account_email_change_request(account=account, email=NEW, reason="r", by=people["alice"])
    BillingAccount.objects.filter(pk=account.pk).update(billing_email="other@x.example")
    with pytest.raises(ConflictError, match="changed since the request"):
        account_email_change_confirm(change_id=first.pk, by=people["bob"])


def test_the_stripe_customer_changes_through_the_action_with_its_audit(server, people):
    account = BillingAccount.objects.create(
        acct_id=7305, name="Quay", billing_email=OLD, stripe_customer_id=None
    )
    customer = stripe_lib.Customer.create(email=OLD, name="Quay")
    response = _as(people["alice"]).post(
        CHANGELIST,
        {
            "action": "change_stripe_customer",
            ACTION_CHECKBOX_NAME: [account.pk],
            "apply": "yes",
            "value": customer.id,
            "reason": "linked by hand: legacy payment_customer_id was empty",
        },
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.stripe_customer_id == customer.id
    change = AccountChange.objects.get()
    assert (change.field, change.before, change.after, change.status) == (
        "stripe_customer_id",
        "",
        customer.id,
        "applied",
    )
    assert change.requested_by == change.decided_by == people["alice"]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("cus_DoesNotExist0001", "Stripe has no customer"),
        ("cus_../../v1/charges", "letters and digits"),
        ("acct_123", "letters and digits"),
    ],
)
def test_a_stripe_customer_that_is_not_one_is_refused(server, people, value, words):
    account = BillingAccount.objects.create(acct_id=7306, name="Quay")
    with pytest.raises(BillingError, match=words):
        account_customer_id_change(account=account, customer_id=value, reason="r", by=people["bob"])
    assert BillingAccount.objects.get(pk=account.pk).stripe_customer_id is None
    assert AccountChange.objects.count() == 0


def test_a_stripe_customer_of_another_account_is_refused(server, people):
    customer = stripe_lib.Customer.create(email=OLD, name="Quay")
    BillingAccount.objects.create(acct_id=7307, name="Owner", stripe_customer_id=customer.id)
    account = BillingAccount.objects.create(acct_id=7308, name="Quay")
    with pytest.raises(ConflictError, match="belongs to account 7307"):
        account_customer_id_change(
            account=account, customer_id=customer.id, reason="r", by=people["bob"]
        )


def test_the_form_page_asks_for_the_value_and_the_reason(people):
    account = BillingAccount.objects.create(acct_id=7309, name="Quay", billing_email=OLD)
    response = _as(people["alice"]).post(
        CHANGELIST, {"action": "request_email_change", ACTION_CHECKBOX_NAME: [account.pk]}
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="value"' in page and 'name="reason"' in page and OLD in page
    assert reverse("admin:metering_billingaccount_changelist") == CHANGELIST
