"""What the databases hold, to compare before and after a request: for every model of every
app (both aliases), its row count and a digest of every row's field values."""

import hashlib
from dataclasses import dataclass

from django.apps import apps
from django.db import connections, models, router

# Sessions change when a signed-in user is shown a message; they are not business data.
IGNORED = {"sessions.session"}


def row_digest(obj: models.Model) -> str:
    """Digest of one stored row's field values, read fresh from its database."""
    model = type(obj)
    db = router.db_for_read(model)
    names = [f.attname for f in model._meta.concrete_fields]
    values = model._base_manager.using(db).filter(pk=obj.pk).values_list(*names).first()
    return hashlib.sha256(repr(values).encode()).hexdigest()


def _tables(alias: str) -> set[str]:
    with connections[alias].cursor() as cursor:
        return set(connections[alias].introspection.table_names(cursor))


@dataclass(frozen=True)
class Snapshot:
    tables: dict[str, tuple[int, str]]

    def changes(self, later: "Snapshot") -> dict[str, tuple]:
        """label -> ((count, digest) before, (count, digest) after) for every table that moved."""
        return {
            label: (self.tables.get(label), later.tables.get(label))
            for label in sorted(set(self.tables) | set(later.tables))
            if self.tables.get(label) != later.tables.get(label)
        }


def snapshot() -> Snapshot:
    """Row count and content digest of every concrete model's table (proxies share theirs)."""
    existing: dict[str, set[str]] = {}
    tables = {}
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or meta.label_lower in IGNORED:
            continue
        db = router.db_for_read(model)
        if db not in existing:
            existing[db] = _tables(db)
        if meta.db_table not in existing[db]:
            continue
        names = [f.attname for f in meta.concrete_fields]
        rows = model._base_manager.using(db).order_by("pk").values_list(*names)
        digest = hashlib.sha256()
        count = 0
        for row in rows.iterator():
            digest.update(repr(row).encode())
            count += 1
        tables[meta.label_lower] = (count, digest.hexdigest())
    return Snapshot(tables)
