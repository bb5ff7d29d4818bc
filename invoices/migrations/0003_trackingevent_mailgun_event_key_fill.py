"""Fill `mailgun_event_key` for tracking events kept before it existed (or keyed with the
timestamp as Mailgun happened to write it), so the webhook and the outcome lookup recognise
them: Mailgun's event id with the timestamp's whole seconds, from the stored event data. When
two rows are the same Mailgun event, the first kept holds the key."""

from decimal import Decimal, InvalidOperation

from django.db import migrations


def event_key(event_data):
    """Mailgun's event id and its timestamp's whole seconds (as `invoices.tracking` keys them,
    frozen here so the migration does not change with the code)."""
    if not isinstance(event_data, dict):
        return None
    event_id, timestamp = event_data.get("id"), event_data.get("timestamp")
    if not event_id or timestamp is None or isinstance(timestamp, bool):
        return None
    try:
        seconds = int(Decimal(str(timestamp).strip()))
    except (InvalidOperation, ValueError):
        return None
    return f"{event_id}@{seconds}"


def fill_event_keys(apps, schema_editor):
    TrackingEvent = apps.get_model("invoices", "TrackingEvent")
    taken = set()
    changed = []
    for row in TrackingEvent.objects.order_by("id").only("id", "data", "mailgun_event_key"):
        key = event_key((row.data or {}).get("mailgun"))
        if key in taken:
            key = None  # the same Mailgun event kept twice before: the first holds the key
        if key is not None:
            taken.add(key)
        if row.mailgun_event_key != key:
            row.mailgun_event_key = key
            changed.append(row)
    # Clear first, then set: a row may take a key another row held in its old spelling.
    TrackingEvent.objects.filter(pk__in=[row.pk for row in changed]).update(mailgun_event_key=None)
    TrackingEvent.objects.bulk_update(
        [row for row in changed if row.mailgun_event_key], ["mailgun_event_key"], batch_size=500
    )


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0002_trackingevent_source_and_mailgun_event_key"),
    ]

    operations = [
        migrations.RunPython(fill_event_keys, migrations.RunPython.noop, elidable=True),
    ]
