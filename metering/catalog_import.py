"""`catalog_import`: the legacy plans as Stripe products, meters and prices, recorded by key.

Idempotent: an object whose key is recorded in `CatalogObject` is never created again. A key
not recorded yet is first looked for in Stripe (a product by name, a meter by event name, a
price by lookup key), so a run interrupted between Stripe's answer and our write adopts what
it created instead of creating a second one; creates carry `idempotency_key=catalog:<key>`.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction

from billing_project.money import format_money

from . import gateways
from .catalog import METERS, PRODUCTS, MeterSpec, PriceSpec, ProductSpec, plan_price_specs
from .locks import exclusive_run
from .models import CatalogObject
from .pricing import PlanError
from .selectors import account_list, catalog_ids_get, legacy_plans_get

Progress = Callable[[str], None]


class CatalogError(Exception):
    """The catalog cannot be imported as asked (a clear message for the operator)."""


@dataclass
class ImportReport:
    accounts: int = 0
    created: list[tuple[str, str, str]] = field(default_factory=list)  # (type, key, stripe id)
    adopted: list[tuple[str, str, str]] = field(default_factory=list)
    existing: int = 0
    planned: list[tuple[str, str, str]] = field(default_factory=list)  # (type, key, what)
    errors: list[str] = field(default_factory=list)


def price_specs_for_accounts(
    acct_ids: list[int], errors: list[str]
) -> dict[int, list[tuple[PriceSpec, int | None]]]:
    """Each account's subscription prices; a plan that cannot be imported adds an error."""
    result = {}
    for acct_id, plan in legacy_plans_get(acct_ids).items():
        if not plan.flat_fees and not plan.tiers:
            errors.append(f"account {acct_id}: no legacy plan (no account_plan_sub or usage rows)")
            continue
        try:
            result[acct_id] = plan_price_specs(plan)
        except (PlanError, ValueError) as exc:
            errors.append(f"account {acct_id}: {exc}")
    return result


def price_description(spec: PriceSpec) -> str:
    if not spec.metered:
        return f"flat {format_money(spec.unit_amount or 0, spec.currency)} a month"
    tiers = ", ".join(
        f"{'≤' + format(up_to, ',') if up_to != 'inf' else 'above'}: "
        f"{Decimal(unit) * 10} per 1,000 (minor units)"
        for up_to, unit in spec.tiers
    )
    return f"{spec.kind.value} volume tiers ({tiers})"


def _record(
    *, key: str, object_type: str, stripe_id: str, kind: str, details: dict, adopted: bool
) -> CatalogObject:
    with transaction.atomic():
        obj, _ = CatalogObject.objects.get_or_create(
            key=key,
            defaults={
                "object_type": object_type,
                "stripe_id": stripe_id,
                "kind": kind,
                "details": details,
                "adopted": adopted,
            },
        )
    return obj


def _ensure_product(spec: ProductSpec, report: ImportReport) -> str:
    matches = [p for p in gateways.products_active() if p.get("name") == spec.name]
    metadata = {"catalog_key": spec.key, **({"kind": spec.kind} if spec.kind else {})}
    if len(matches) == 1:
        product = matches[0]
        if any(product.get("metadata", {}).get(k) != v for k, v in metadata.items()):
            gateways.product_set_metadata(product["id"], metadata)
        report.adopted.append(("product", spec.key, product["id"]))
        adopted = True
    else:
        product = gateways.product_create(
            name=spec.name, metadata=metadata, idempotency_key=f"catalog:{spec.key}"
        )
        report.created.append(("product", spec.key, product["id"]))
        adopted = False
    details = {"name": spec.name}
    return _record(
        key=spec.key,
        object_type="product",
        stripe_id=product["id"],
        kind=spec.kind or "",
        details=details,
        adopted=adopted,
    ).stripe_id


def _ensure_meter(spec: MeterSpec, report: ImportReport) -> str:
    found = next((m for m in gateways.meters_active() if m["event_name"] == spec.event_name), None)
    adopted = found is not None
    if found is None:
        found = gateways.meter_create(
            event_name=spec.event_name,
            display_name=spec.display_name,
            idempotency_key=f"catalog:{spec.key}",
        )
    (report.adopted if adopted else report.created).append(("meter", spec.key, found["id"]))
    return _record(
        key=spec.key,
        object_type="meter",
        stripe_id=found["id"],
        kind=spec.kind.value,
        details={"event_name": spec.event_name, "formula": "sum"},
        adopted=adopted,
    ).stripe_id


def price_create_params(spec: PriceSpec, *, product_id: str, meter_id: str | None) -> dict:
    """The `POST /v1/prices` parameters for a spec."""
    params = {
        "product": product_id,
        "currency": spec.currency,
        "lookup_key": spec.key,
        "nickname": price_description(spec)[:250],
        "metadata": {"kind": spec.kind.value, "catalog_key": spec.key},
    }
    if spec.metered:
        params.update(
            billing_scheme="tiered",
            tiers_mode="volume",
            tiers=spec.stripe_tiers(),
            recurring={"interval": "month", "usage_type": "metered", "meter": meter_id},
        )
    else:
        params.update(
            unit_amount=spec.unit_amount,
            recurring={"interval": "month", "usage_type": "licensed"},
        )
    return params


def price_matches_spec(price: dict, spec: PriceSpec, *, meter_id: str | None) -> list[str]:
    """What differs between a Stripe price and the spec it should implement (empty: none)."""
    problems = []
    recurring = price.get("recurring") or {}
    if price.get("currency") != spec.currency:
        problems.append(f"currency {price.get('currency')} instead of {spec.currency}")
    if not price.get("active", True):
        problems.append("price is archived (inactive)")
    if recurring.get("interval") != "month" or recurring.get("interval_count", 1) != 1:
        problems.append("not billed monthly")
    if spec.metered:
        if recurring.get("usage_type") != "metered" or recurring.get("meter") != meter_id:
            problems.append(f"not metered on meter {meter_id}")
        if price.get("billing_scheme") != "tiered" or price.get("tiers_mode") != "volume":
            problems.append("not volume-tiered")
        actual = tuple(
            (
                "inf" if tier.get("up_to") in (None, "inf") else int(tier["up_to"]),
                Decimal(str(tier.get("unit_amount_decimal") or tier.get("unit_amount") or 0)),
                Decimal(str(tier.get("flat_amount_decimal") or tier.get("flat_amount") or 0)),
            )
            for tier in price.get("tiers") or []
        )
        expected = tuple((up_to, Decimal(unit), Decimal(0)) for up_to, unit in spec.tiers)
        if actual != expected:
            problems.append(
                "tiers "
                + _tiers_text(actual)
                + " differ from the legacy tiers "
                + _tiers_text(expected)
            )
    else:
        if recurring.get("usage_type") != "licensed" or price.get("billing_scheme") != "per_unit":
            problems.append("not a licensed per-unit price")
        if price.get("unit_amount") != spec.unit_amount:
            problems.append(
                f"unit amount {price.get('unit_amount')} instead of {spec.unit_amount} "
                "(minor units)"
            )
    return problems


def _tiers_text(tiers) -> str:
    return "[" + "; ".join(f"up_to {t[0]}: {t[1]}" for t in tiers) + "]"


def _ensure_price(
    spec: PriceSpec, *, product_id: str, meter_id: str | None, report: ImportReport
) -> None:
    existing = gateways.price_by_lookup_key(spec.key)
    if existing is not None:
        problems = price_matches_spec(existing, spec, meter_id=meter_id)
        if problems:
            report.errors.append(
                f"price {existing['id']} holds lookup key {spec.key} but {'; '.join(problems)}"
            )
            return
        report.adopted.append(("price", spec.key, existing["id"]))
        price, adopted = existing, True
    else:
        price = gateways.price_create(
            price_create_params(spec, product_id=product_id, meter_id=meter_id),
            idempotency_key=f"catalog:{spec.key}",
        )
        report.created.append(("price", spec.key, price["id"]))
        adopted = False
    details = (
        {"unit_amount": spec.unit_amount, "currency": spec.currency}
        if not spec.metered
        else {"tiers": [list(t) for t in spec.tiers], "currency": spec.currency}
    )
    _record(
        key=spec.key,
        object_type="price",
        stripe_id=price["id"],
        kind=spec.kind.value,
        details=details,
        adopted=adopted,
    )


def catalog_import(
    *, cohort: int | None = None, dry_run: bool = False, progress: Progress | None = None
) -> ImportReport:
    """Create the products, meters and prices the accounts' legacy plans need (of one cohort
    when given). Idempotent: re-runs create nothing; `dry_run` calls nothing and writes nothing."""
    report = ImportReport()
    say = progress or (lambda _message: None)
    acct_ids = list(account_list(cohort=cohort).values_list("acct_id", flat=True))
    report.accounts = len(acct_ids)
    specs: dict[str, PriceSpec] = {}
    for items in price_specs_for_accounts(acct_ids, report.errors).values():
        for spec, _quantity in items:
            specs.setdefault(spec.key, spec)
    keys = [p.key for p in PRODUCTS] + [m.key for m in METERS.values()] + list(specs)
    recorded = catalog_ids_get(keys)
    report.existing = len(recorded)
    if dry_run:
        report.planned.extend(("product", p.key, p.name) for p in PRODUCTS if p.key not in recorded)
        report.planned.extend(
            ("meter", m.key, f"{m.event_name} (sum)")
            for m in METERS.values()
            if m.key not in recorded
        )
        report.planned.extend(
            ("price", key, price_description(spec))
            for key, spec in sorted(specs.items())
            if key not in recorded
        )
        return report
    with exclusive_run("catalog import"):
        _create_missing(specs, recorded, report, say)
    return report


def _create_missing(
    specs: dict[str, PriceSpec], recorded: dict[str, str], report: ImportReport, say: Progress
) -> None:
    ids = dict(recorded)
    for product in PRODUCTS:
        if product.key not in ids:
            ids[product.key] = _ensure_product(product, report)
            say(f"product {product.name}: {ids[product.key]}")
    for meter in METERS.values():
        if meter.key not in ids:
            ids[meter.key] = _ensure_meter(meter, report)
            say(f"meter {meter.event_name}: {ids[meter.key]}")
    missing = [spec for key, spec in sorted(specs.items()) if key not in ids]
    for index, spec in enumerate(missing, start=1):
        _ensure_price(
            spec,
            product_id=ids[spec.product_key],
            meter_id=ids.get(spec.meter_key) if spec.meter_key else None,
            report=report,
        )
        say(f"price {index}/{len(missing)}: {spec.key}")
