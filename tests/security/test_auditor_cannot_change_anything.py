"""A staff user in the "Billing auditor" group sees every admin page and changes nothing.

Generic over `admin.site._registry`: every changelist and change page renders read-only; every
admin action of every ModelAdmin (enumerated as a superuser), every add/change/delete POST and
every custom admin URL is refused (403/405, or Django's "No action selected") and leaves both
databases unchanged: row counts and content digests of every model of every app, and the
selected row's own digest. Each attempt is its own test id.
"""

import re
from datetime import date
from io import StringIO

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.forms.models import model_to_dict
from django.test import Client, RequestFactory
from django.urls import reverse

from cohorts import checklist, transitions
from cohorts.permissions import AUDITOR_GROUP

from .admin_rows import admin_rows
from .db_snapshot import row_digest, snapshot

pytestmark = pytest.mark.django_db(databases=["default", "legacy"])

# The cohort page's POST endpoint `<pk>/act/<action>/` dispatches on these slugs.
COHORT_ACTS = ("run-checks", "transition", "rollback", "item", "note", "sign-off", "review")
STANDARD_URLS = {"changelist", "add", "history", "delete", "change"}
REFUSED = {403, 405}

# Custom admin views whose POST only reads (a form choosing what to download).
READ_ONLY_POSTS = {("exports.exportrun", "month-end/")}


def _label(model) -> str:
    return model._meta.label_lower


def _superuser_request():
    request = RequestFactory().get("/admin/")
    request.user = get_user_model()(is_superuser=True, is_staff=True, is_active=True)
    return request


def _registry():
    return sorted(admin.site._registry.items(), key=lambda item: _label(item[0]))


def all_actions():
    """(model, action name) for every action a superuser is offered, on every ModelAdmin."""
    request = _superuser_request()
    return [
        pytest.param(model, name, id=f"{_label(model)}:{name}")
        for model, model_admin in _registry()
        for name in model_admin.get_actions(request)
    ]


def all_models():
    return [pytest.param(model, id=_label(model)) for model, _ in _registry()]


def _custom_patterns(model_admin):
    for pattern in model_admin.get_urls():
        name = pattern.name or ""
        if not name or name.rsplit("_", 1)[-1] in STANDARD_URLS:
            continue
        yield pattern


def _fills(model_admin, route: str) -> list[dict[str, str]]:
    """Every way to fill a custom route's parameters (the object is filled in per test)."""
    fills = [{}]
    for param in re.findall(r"<(?:\w+:)?(\w+)>", route):
        if param == "action":
            options = list(COHORT_ACTS)
        elif param == "action_name":
            options = list(model_admin.get_actions(_superuser_request()))
        elif param == "model_name":
            options = [model_admin.model._meta.model_name]
        else:
            options = ["{pk}"]
        fills = [{**fill, param: option} for fill in fills for option in options]
    return fills


def all_custom_urls():
    """(model, route, parameters) for every URL a ModelAdmin adds with `get_urls`."""
    params = []
    for model, model_admin in _registry():
        for pattern in _custom_patterns(model_admin):
            route = str(pattern.pattern)
            for fill in _fills(model_admin, route):
                shown = re.sub(r"<(?:\w+:)?(\w+)>", lambda m, f=fill: f.get(m[1], m[1]), route)
                params.append(pytest.param(model, route, fill, id=f"{_label(model)}:{shown}"))
    return params


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def auditor():
    call_command("setup_groups", stdout=StringIO())
    user = get_user_model().objects.create_user(
        "auditor", "auditor@adventive.com", "correct-horse-9", is_staff=True
    )
    user.groups.add(Group.objects.get(name=AUDITOR_GROUP))
    return get_user_model().objects.get(pk=user.pk)


def _client(user) -> Client:
    client = Client(raise_request_exception=False)  # a 500 is a finding, shown as a status
    client.force_login(user)
    return client


@pytest.fixture
def auditor_client(auditor):
    return _client(auditor)


@pytest.fixture
def rows(stripe):
    """One stored row per admin model (the Stripe-compatible server reset for this test)."""
    return admin_rows()


def _request_as(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _post_forms_elsewhere(html: str, here: str) -> list[str]:
    """Targets of POST forms on the page other than the page itself and sign-out."""
    targets = []
    for form in re.findall(r"<form\b[^>]*>", html):
        if not re.search(r'method="post"', form, re.I):
            continue
        target = re.search(r'action="([^"]*)"', form)
        url = target[1] if target else ""
        if url in ("", here, reverse("admin:logout")):
            continue
        targets.append(url)
    return targets


def _unchanged(before, row, row_before) -> list[str]:
    after = snapshot()
    problems = [f"{label}: {old} -> {new}" for label, (old, new) in before.changes(after).items()]
    if row_digest(row) != row_before:
        problems.append(f"selected row {row!r} changed")
    return problems


# --- (1) pages render read-only ------------------------------------------------------------


@pytest.mark.parametrize("model", all_models())
def test_auditor_sees_changelist_without_actions(model, rows, auditor_client):
    url = _admin_url(model, "changelist")
    before = snapshot()
    response = auditor_client.get(url)
    assert response.status_code == 200, url
    assert before.changes(snapshot()) == {}, f"GET {url} wrote to the database"
    action_form = response.context["action_form"]
    offered = action_form.fields["action"].choices if action_form else []
    assert action_form is None, f"actions offered to the auditor on {url}: {offered}"
    assert not response.context["has_add_permission"]
    assert response.context["cl"].formset is None, "list_editable form offered"
    html = response.content.decode()
    assert _post_forms_elsewhere(html, url) == []


@pytest.mark.parametrize("model", all_models())
def test_auditor_sees_change_page_read_only(model, rows, auditor_client):
    url = _admin_url(model, "change", quote(rows[model].pk))
    before = snapshot()
    response = auditor_client.get(url)
    assert response.status_code == 200, url
    assert before.changes(snapshot()) == {}, f"GET {url} wrote to the database"
    context = response.context
    assert not context["has_change_permission"]
    assert not context["has_delete_permission"]
    html = response.content.decode()
    buttons = re.findall(r'name="(_save|_continue|_addanother|_saveasnew)"', html)
    assert buttons == [], f"save buttons on {url}"
    assert _post_forms_elsewhere(html, url) == []


# --- (2) every admin action -----------------------------------------------------------------

CONFIRMATION = {
    "post": "yes",  # Django's and the invoices' confirmation pages
    "apply": "yes",  # the drift follow-up page
    "note": "auditor was here",
    "request_key": "auditor",
}


def _action_problems(user, model, action: str, row) -> list[str]:
    """POST `action` on `row` as `user`; what shows the action was not refused."""
    offered = admin.site._registry[model].get_actions(_request_as(user))
    client = _client(user)  # signing in stamps last_login: before the snapshot
    before, row_before = snapshot(), row_digest(row)
    data = {"action": action, "index": 0, ACTION_CHECKBOX_NAME: [row.pk], **CONFIRMATION}
    response = client.post(_admin_url(model, "changelist"), data)
    messages = _messages(response)
    problems = []
    if action in offered:
        problems.append(f"{user.username} is offered {action!r}")
    refused = response.status_code == 403 or (
        response.status_code in (200, 302) and (not offered or "No action selected." in messages)
    )
    if not refused:
        problems.append(f"POST answered {response.status_code}, messages {messages}")
    return problems + _unchanged(before, row, row_before)


@pytest.mark.parametrize(("model", "action"), all_actions())
def test_auditor_cannot_run_action(model, action, rows, auditor):
    problems = _action_problems(auditor, model, action, rows[model])
    assert problems == [], f"{_label(model)}:{action} as auditor: " + "; ".join(problems)


# --- (3) add, change and delete POSTs -------------------------------------------------------


def _form_data(row) -> dict:
    data = {k: ("" if v is None else v) for k, v in model_to_dict(row).items()}
    return {k: v for k, v in data.items() if not isinstance(v, list | dict)}


@pytest.mark.parametrize("view", ["add", "change", "delete"])
@pytest.mark.parametrize("model", all_models())
def test_auditor_cannot_add_change_or_delete(model, view, rows, auditor_client):
    row = rows[model]
    before, row_before = snapshot(), row_digest(row)
    args = () if view == "add" else (quote(row.pk),)
    data = {**_form_data(row), "post": "yes", "_save": "Save"}
    response = auditor_client.post(_admin_url(model, view, *args), data)
    problems = [] if response.status_code == 403 else [f"POST answered {response.status_code}"]
    problems += _unchanged(before, row, row_before)
    assert problems == [], f"{view} {_label(model)} as auditor: " + "; ".join(problems)


# --- (4) custom admin URLs ------------------------------------------------------------------


def _custom_payload(model, fill: dict, rows) -> dict:
    last_month = date.today().replace(day=1).toordinal() - 1
    account = next(r for m, r in rows.items() if _label(m) == "metering.billingaccount")
    selected = fill.get("action_name")
    return {
        **CONFIRMATION,
        ACTION_CHECKBOX_NAME: [selected if selected == "_sync_all_instances" else rows[model].pk],
        "to": next(iter(transitions.TRANSITIONS)),
        "item": next(iter(checklist.BY_KEY)),
        "passed": "yes",
        "text": "auditor was here",
        "reason": "auditor was here",
        "account": account.pk,
        "month": f"{date.fromordinal(last_month):%Y-%m}",
        "format": "csv",
    }


@pytest.mark.calendar  # the month-end form offers the months before today
@pytest.mark.parametrize(("model", "route", "fill"), all_custom_urls())
def test_auditor_cannot_post_to_custom_admin_urls(model, route, fill, rows, auditor_client):
    row = rows[model]
    values = {k: v.format(pk=quote(row.pk)) for k, v in fill.items()}
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m[1]]), route)
    url = _admin_url(model, "changelist") + path
    before, row_before = snapshot(), row_digest(row)
    response = auditor_client.post(url, _custom_payload(model, fill, rows))
    problems = []
    if (_label(model), route) in READ_ONLY_POSTS and response.status_code == 200:
        pass  # a download: reads, writes nothing (checked below)
    elif response.status_code not in REFUSED:
        # A page that ignores the method (renders exactly what GET renders) is not an action.
        page = auditor_client.get(url)
        same_page = (
            response.status_code == page.status_code == 200
            and [t.name for t in response.templates] == [t.name for t in page.templates]
            and response.templates
        )
        if not same_page:
            problems.append(
                f"POST answered {response.status_code} "
                f"({response.get('Content-Type')}, messages {_messages(response)})"
            )
    problems += _unchanged(before, row, row_before)
    assert problems == [], f"POST {url} as auditor: " + "; ".join(problems)


# --- controls: the same checks fail when something does change --------------------------------


def test_control_superuser_action_changes_the_snapshot(rows, admin_user):
    model = next(m for m in rows if _label(m) == "reconciliation.driftrecord")
    row = rows[model]
    before, row_before = snapshot(), row_digest(row)
    response = _client(admin_user).post(
        _admin_url(model, "changelist"),
        {"action": "add_note", "index": 0, ACTION_CHECKBOX_NAME: [row.pk], **CONFIRMATION},
    )
    assert response.status_code == 302
    assert "Note added: 1 drift record(s) updated." in _messages(response)
    changed = before.changes(snapshot())
    assert "reconciliation.driftrecordevent" in changed, changed
    assert _unchanged(before, row, row_before) != []


def test_control_the_action_check_fails_for_a_user_who_may_act(rows, admin_user):
    model = next(m for m in rows if _label(m) == "reconciliation.driftrecord")
    problems = _action_problems(admin_user, model, "mark_investigating", rows[model])
    assert "admin is offered 'mark_investigating'" in problems
    assert any(p.startswith("reconciliation.driftrecord:") for p in problems), problems
    assert any(p.startswith("selected row") for p in problems), problems


def test_control_snapshot_sees_one_field_change_on_either_database(rows):
    legacy = next(r for m, r in rows.items() if _label(m) == "reconciliation.legacyinvoice")
    before, row_before = snapshot(), row_digest(legacy)
    type(legacy).objects.filter(pk=legacy.pk).update(currency="eur")
    assert row_digest(legacy) != row_before
    assert set(before.changes(snapshot())) == {"reconciliation.legacyinvoice"}
