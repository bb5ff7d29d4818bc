"""Routes the legacy models to the `legacy` alias and keeps that database read-only."""

from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings

from billing_project.errors import LegacyWriteRefused

_writes_allowed: ContextVar[bool] = ContextVar("legacy_writes_allowed", default=False)


@contextmanager
def legacy_writes_allowed():
    """Allow writes to the legacy database inside this block (the demo and tests only)."""
    token = _writes_allowed.set(True)
    try:
        yield
    finally:
        _writes_allowed.reset(token)


def _is_legacy(model) -> bool:
    from .legacy import LegacyModel

    return issubclass(model, LegacyModel)


class LegacyRouter:
    def db_for_read(self, model, **hints):
        return "legacy" if _is_legacy(model) else None

    def db_for_write(self, model, **hints):
        if not _is_legacy(model):
            return None
        if not (settings.LEGACY_DATABASE_WRITABLE or _writes_allowed.get()):
            raise LegacyWriteRefused(
                f"refusing to write {model._meta.db_table}: the legacy billing database is "
                "read-only for this application"
            )
        return "legacy"

    def allow_relation(self, obj1, obj2, **hints):
        if _is_legacy(type(obj1)) or _is_legacy(type(obj2)):
            return _is_legacy(type(obj1)) and _is_legacy(type(obj2))
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        # Nothing of ours lives in the legacy database, and nothing is migrated there.
        return db != "legacy"
