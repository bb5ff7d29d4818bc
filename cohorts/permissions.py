"""Who may do what with cohorts: operators act, auditors (and everyone else) only look."""

from django.core.exceptions import PermissionDenied

OPERATE = "cohorts.operate_cohort"
VIEW = "cohorts.view_cohort"
OPERATOR_GROUP = "Billing operator"
AUDITOR_GROUP = "Billing auditor"


def can_operate(user) -> bool:
    return bool(user.is_active and user.is_staff and user.has_perm(OPERATE))


def can_view(user) -> bool:
    return bool(user.is_active and user.is_staff and (user.has_perm(VIEW) or can_operate(user)))


def require_operate(user) -> None:
    if not can_operate(user):
        raise PermissionDenied("only a billing operator can change a cohort")


def require_view(user) -> None:
    if not can_view(user):
        raise PermissionDenied("you may not see the cohort board")


# What an operator does beyond looking: run checks, record items, notes, reviews, sign-offs,
# transitions and rollbacks (all through the cohort services), and rename a cohort; act on
# deliveries (retry, re-render, re-send), drift records, managed jobs, producer tokens, the
# usage outbox, history verification and the monitors. Financial records stay read-only in
# their admins whatever the permission: these enable the admin actions that call services.
OPERATOR_EXTRA = (
    "cohorts.operate_cohort",
    "cohorts.change_cohort",
    "invoices.change_invoicedelivery",
    "reconciliation.change_driftrecord",
    "metering.change_billingaccount",
    "metering.add_managedjob",
    "metering.change_managedjob",
    "metering.delete_managedjob",
    "metering.add_producertoken",
    "metering.change_producertoken",
    "metering.change_usagerevision",
    "exports.change_historymonth",
    "core.change_monitor",
    "core.change_stripemirror",
)


def groups_plan() -> dict[str, list]:
    """The permissions each group gets: every view permission, plus the operator's extras."""
    from django.contrib.auth.models import Permission

    views = list(Permission.objects.filter(codename__startswith="view_"))
    extra = []
    for name in OPERATOR_EXTRA:
        app_label, codename = name.split(".")
        extra.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return {OPERATOR_GROUP: views + extra, AUDITOR_GROUP: views}


def groups_setup() -> dict[str, bool]:
    """Create or update both groups (idempotent; members kept). Returns name -> created."""
    from django.contrib.auth.models import Group
    from django.db import transaction

    created = {}
    with transaction.atomic():
        for name, permissions in groups_plan().items():
            group, created[name] = Group.objects.get_or_create(name=name)
            group.permissions.set(permissions)
    return created
