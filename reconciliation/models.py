"""Reconciliation records. The legacy database models live in `legacy.py`."""

from .legacy import (  # noqa: F401  (registered with this app so the router and admin see them)
    LegacyAccount,
    LegacyInvoice,
    LegacyInvoiceLine,
    LegacyManagedServiceJob,
    LegacyPlanSub,
    LegacyPlanUsage,
)
