"""Where dj-stripe 2.11 cannot read the current API shape (2026-08-26.dahlia), in one place.

dj-stripe only mirrors Stripe objects here (`billing_project.stripe_mirror`): no delivery,
check or report reads its models, so a shape it cannot parse is normalised for it or skipped,
never a reason to stop work. Applied once, from `CoreConfig.ready`.

- A customer's discount holds its coupon under `discount.source.coupon` (with
  `source.type == "coupon"`); dj-stripe's customer sync reads `discount.coupon` and raises
  ("dj-stripe encountered an empty field Coupon.coupon = None"). The coupon is handed to it
  where it looks; a discount without a coupon (a promotion code's, or one Stripe did not
  expand) is left out of dj-stripe's coupon sync.
"""

from typing import Any

from djstripe.models import Customer

_applied = False


def discount_for_djstripe(discount: dict[str, Any] | None) -> dict[str, Any] | None:
    """The discount as dj-stripe 2.11 reads it (`discount.coupon`), or None to skip it."""
    if not discount:
        return None
    if discount.get("coupon"):
        return discount
    source = discount.get("source") or {}
    coupon = source.get("coupon") if source.get("type") == "coupon" else None
    if not coupon:
        return None
    return {**discount, "coupon": coupon}


def payload_for_djstripe(obj: dict[str, Any]) -> dict[str, Any]:
    """An event's object as dj-stripe 2.11 can copy it (see above)."""
    if isinstance(obj.get("discounts"), list):
        obj = {**obj, "discounts": [d for d in obj["discounts"] if isinstance(d, dict)]}
    return obj


def djstripe_compat_apply() -> None:
    """Install the normalisations above (idempotent)."""
    global _applied
    if _applied:
        return
    original = Customer._attach_objects_post_save_hook

    def attach_objects_post_save_hook(self, cls, data, *args, **kwargs):
        data = {**data, "discount": discount_for_djstripe(data.get("discount"))}
        return original(self, cls, data, *args, **kwargs)

    Customer._attach_objects_post_save_hook = attach_objects_post_save_hook
    _applied = True
