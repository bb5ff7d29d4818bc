"""Conformance with Stripe's API as stripe-python's generated types describe it.

stripe-python is generated from Stripe's OpenAPI spec, so its types are the spec we can read
here: every service method names its HTTP method, its path and its params TypedDict
(`stripe.params.*`), and every resource class (`stripe._object_classes.OBJECT_CLASSES` maps an
`object` string to it) annotates its fields, with inner classes for sub-objects.

- `check_request` validates a request's parameters against its operation's TypedDict, as Stripe
  does: an unknown parameter (nested ones too, `items[0][foo]`) or an enum value outside the
  `Literal` is a 400. Routes are mapped to operations by reading the service modules' source
  (`self._request("post", "/v1/invoices/{invoice}/finalize", ...)` in a method whose `params`
  is `InvoiceFinalizeInvoiceParams`), not by a table kept by hand.
- `check_object` reports every field of an object (and of its nested objects and list items)
  that its resource class does not declare, and every field Stripe always renders that it
  lacks: non-optional fields, and optional ones Stripe's own example object
  (`fixtures3.json`) carries.
"""

import ast
import functools
import importlib
import json
import re
import types
import typing
from pathlib import Path
from typing import Any

import stripe
import typing_extensions
from stripe._object_classes import OBJECT_CLASSES
from stripe._stripe_object import StripeObject

from .store import StripeError

_STRIPE_DIR = Path(stripe.__file__).parent
_FIXTURES: dict[str, dict[str, Any]] = json.loads(
    Path(__file__).with_name("fixtures3.json").read_text()
)["resources"]
# stripe-python options (api_key, idempotency_key, ...) that some params TypedDicts inherit;
# the client strips them before sending.
_REQUEST_OPTIONS = set(stripe.RequestOptions.__annotations__)
# Fields Stripe renders on every list object; `total_count` only on some embedded lists.
_LIST_FIELDS = {"object", "data", "has_more", "url"}
_LIST_OPTIONAL = {"total_count"}
# v2 objects the server serves whose classes OBJECT_CLASSES (v1) does not list.
_V2_CLASSES = {
    "v2.core.event": ("stripe.v2.core._event", "Event"),
    "v2.core.event_destination": ("stripe.v2.core._event_destination", "EventDestination"),
}


class ConformanceError(StripeError):
    """The server answered with something Stripe's types say Stripe never answers."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Stripe conformance: {message}", status=500, type="api_error")


# ---------------------------------------------------------------------------------------------
# Requests


@functools.cache
def operations() -> list[tuple[str, re.Pattern[str], int, str, str]]:
    """(method, path regex, literal segment count, params module, params class) for every
    sync method of every stripe-python service."""
    found = []
    for source in sorted(_STRIPE_DIR.rglob("*_service.py")):
        tree = ast.parse(source.read_text())
        imports = {
            alias.asname or alias.name: node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
            for alias in node.names
        }
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef):
                continue
            params_arg = next((a for a in func.args.args if a.arg == "params"), None)
            if params_arg is None or params_arg.annotation is None:
                continue
            names = re.findall(r"\w+Params\b", ast.unparse(params_arg.annotation))
            if not names or names[0] not in imports:
                continue
            call = _request_call(func)
            if call is None:
                continue
            method, template = call
            regex = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template))
            literals = sum(1 for part in template.split("/") if part and "{" not in part)
            found.append(
                (method.upper(), re.compile(f"^{regex}$"), literals, imports[names[0]], names[0])
            )
    return found


def _request_call(func: ast.FunctionDef) -> tuple[str, str] | None:
    for node in ast.walk(func):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "_request"
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Constant)
        ):
            path = node.args[1]
            if isinstance(path, ast.Call) and isinstance(path.func, ast.Attribute):
                path = path.func.value  # "/v1/x/{id}".format(...)
            if isinstance(path, ast.Constant) and isinstance(path.value, str):
                return node.args[0].value, path.value
    return None


def params_class(method: str, path: str) -> Any | None:
    """The params TypedDict of the operation `method path` belongs to, or None."""
    matches = [op for op in operations() if op[0] == method and op[1].match(path)]
    if not matches:
        return None
    # `/v1/invoices/search` also matches `/v1/invoices/{invoice}`: the most literal one wins.
    _, _, _, module, name = max(matches, key=lambda op: op[2])
    return getattr(importlib.import_module(module), name)


def _resolve(annotation: Any, namespace: dict[str, Any]) -> Any:
    if isinstance(annotation, str):
        # Annotations of stripe-python's generated params modules, evaluated where they live.
        annotation = eval(annotation, namespace)  # noqa: S307
    if isinstance(annotation, typing.ForwardRef):
        annotation = eval(annotation.__forward_arg__, namespace)  # noqa: S307
    origin = typing.get_origin(annotation)
    if origin in (typing.NotRequired, typing.Required):
        return _resolve(typing.get_args(annotation)[0], namespace)
    return annotation


@functools.cache
def typed_fields(cls: Any) -> dict[str, Any]:
    namespace = vars(importlib.import_module(cls.__module__))
    fields = {}
    for key, annotation in cls.__annotations__.items():
        if key in _REQUEST_OPTIONS:
            continue
        try:
            fields[key] = _resolve(annotation, namespace)
        except NameError:
            fields[key] = Any
    return fields


def _alternatives(annotation: Any, namespace: dict[str, Any]) -> list[Any]:
    annotation = _resolve(annotation, namespace)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        out = []
        for arg in typing.get_args(annotation):
            out.extend(_alternatives(arg, namespace))
        return out
    return [annotation]


def _is_typeddict(annotation: Any) -> bool:
    return isinstance(annotation, type) and typing_extensions.is_typeddict(annotation)


def _join(prefix: str, key: Any) -> str:
    return f"{prefix}[{key}]" if prefix else str(key)


def _check_value(value: Any, annotation: Any, param: str, namespace: dict[str, Any]) -> None:
    if annotation is Any:
        return
    options = _alternatives(annotation, namespace)
    literals = [
        literal
        for option in options
        if typing.get_origin(option) is typing.Literal
        for literal in typing.get_args(option)
    ]
    if isinstance(value, str):
        if value in literals:
            return
        enum = [literal for literal in literals if literal != ""]
        if enum and not any(o is str or o is int or o is bool for o in _strict(options)):
            raise StripeError(f"Invalid {param}: must be one of {_listed(enum)}", param=param)
        return
    if isinstance(value, dict):
        for option in options:
            if _is_typeddict(option):
                check_params(value, option, param)
                return
        return
    if isinstance(value, list):
        for option in options:
            if typing.get_origin(option) in (list,):
                (inner,) = typing.get_args(option) or (Any,)
                for index, item in enumerate(value):
                    _check_value(item, inner, _join(param, index), namespace)
                return


def _strict(options: list[Any]) -> list[Any]:
    """The non-literal alternatives, without the `|str` stripe-python adds to every enum so
    that old clients survive new values (Stripe itself still rejects them)."""
    has_enum = any(
        typing.get_origin(o) is typing.Literal and any(a != "" for a in typing.get_args(o))
        for o in options
    )
    rest = [o for o in options if typing.get_origin(o) is not typing.Literal]
    if has_enum:
        rest = [o for o in rest if o is not str]
    return rest


def _listed(choices: list[str]) -> str:
    if len(choices) == 1:
        return choices[0]
    head, last = ", ".join(choices[:-1]), choices[-1]
    return f"{head}, or {last}" if len(choices) > 2 else f"{head} or {last}"


def check_params(params: dict[str, Any], cls: Any, prefix: str = "") -> None:
    """Stripe's 400s for a request: unknown parameters and enum values, recursively."""
    fields = typed_fields(cls)
    namespace = vars(importlib.import_module(cls.__module__))
    for key, value in params.items():
        param = _join(prefix, key)
        if key == "expand" and not prefix:
            continue
        if key not in fields:
            raise StripeError(f"Received unknown parameter: {param}", param=param)
        _check_value(value, fields[key], param, namespace)


def check_request(method: str, path: str, params: dict[str, Any]) -> bool:
    """Validate a request against its operation's params type; False when it has none."""
    cls = params_class(method, path)
    if cls is None:
        return False
    check_params(params, cls)
    return True


# ---------------------------------------------------------------------------------------------
# Responses


def resource_class(object_name: str, event_type: str | None = None) -> Any | None:
    if object_name == "v2.core.event" and event_type:
        from stripe.events._event_classes import get_v2_event_class

        found = get_v2_event_class(event_type)
        if found is not None:
            return found
    target = OBJECT_CLASSES.get(object_name) or _V2_CLASSES.get(object_name)
    if target is None:
        return None
    module, name = target
    return getattr(importlib.import_module(module), name)


@functools.cache
def _annotations(cls: Any) -> dict[str, tuple[str, bool]]:
    """Field -> (annotation text, whether it may be null or absent)."""
    out: dict[str, tuple[str, bool]] = {}
    for klass in reversed(cls.__mro__):
        if klass in (StripeObject, dict, object) or "__annotations__" not in vars(klass):
            continue
        for key, annotation in vars(klass)["__annotations__"].items():
            text = annotation if isinstance(annotation, str) else repr(annotation)
            if key.startswith("_") or "ClassVar" in text:
                continue
            optional = (
                "Optional[" in text or "None" in text
                if isinstance(annotation, str)
                else type(None) in typing.get_args(annotation)
            )
            out[key] = (text, optional)
    if isinstance(vars(cls).get("RelatedObject"), type) and "related_object" not in out:
        # v2 event classes declare the inner class but annotate the field only on the event
        # notification class.
        out["related_object"] = ("RelatedObject", False)
    return out


def _inner_classes(cls: Any, annotation: str) -> list[Any]:
    inner = []
    for name in re.findall(r"[A-Za-z_]\w*", annotation):
        candidate = vars(cls).get(name)
        if isinstance(candidate, type) and issubclass(candidate, StripeObject):
            inner.append(candidate)
    return inner


@functools.cache
def _always_present(cls: Any, object_name: str | None) -> frozenset[str]:
    example = _FIXTURES.get(object_name or "", {})
    fields = set()
    for key, (_, optional) in _annotations(cls).items():
        if key == "deleted":
            continue
        if not optional or key in example:
            fields.add(key)
    return frozenset(fields)


def object_violations(
    obj: Any, path: str = "", cls: Any = None, *, expanded: bool = False
) -> list[str]:
    """Every field Stripe's types say should not be there or should be, as `path.field` lines."""
    problems: list[str] = []
    if isinstance(obj, list):
        for index, item in enumerate(obj):
            problems += object_violations(item, f"{path}[{index}]", cls, expanded=expanded)
        return problems
    if not isinstance(obj, dict):
        return problems
    object_name = obj.get("object") if isinstance(obj.get("object"), str) else None
    label = path or object_name or "object"
    if object_name == "list" or object_name == "search_result":
        for key in sorted(set(obj) - _LIST_FIELDS - _LIST_OPTIONAL - {"next_page"}):
            problems.append(f"{label}.{key} is not a field of a list")
        for key in sorted(_LIST_FIELDS - set(obj)):
            problems.append(f"{label}.{key} is missing")
        problems += object_violations(obj.get("data", []), f"{label}.data", cls)
        return problems
    if object_name is not None:
        cls = resource_class(
            object_name, obj.get("type") if isinstance(obj.get("type"), str) else None
        )
        if cls is None:
            return problems  # an object type stripe-python does not know: nothing to compare
    if cls is None:
        return problems
    annotations = _annotations(cls)
    kind = object_name or cls.__qualname__
    for key in sorted(set(obj) - set(annotations)):
        problems.append(f"{label}.{key} is not a field of {kind}")
    # An expanded reference is checked for invented fields only: Stripe's fixtures render
    # those as stubs (`{"id", "object", ...}`), so they say nothing about what is always there.
    skip = expanded or obj.get("deleted") is True
    required = set() if skip else _always_present(cls, object_name)
    for key in sorted(required - set(obj)):
        problems.append(f"{label}.{key} is missing from {kind}")
    for key, value in obj.items():
        if key not in annotations or not isinstance(value, (dict, list)):
            continue
        child = f"{label}.{key}"
        reference = "ExpandableField" in annotations[key][0] or "Union[str" in annotations[key][0]
        if isinstance(value, dict) and isinstance(value.get("object"), str):
            problems += object_violations(value, child, expanded=reference)
            continue
        inner = _inner_classes(cls, annotations[key][0])
        if (
            isinstance(value, list)
            and value
            and all(isinstance(v, dict) and isinstance(v.get("object"), str) for v in value)
        ):
            problems += object_violations(value, child, expanded=reference)
        elif len(inner) == 1:
            problems += object_violations(value, child, inner[0])
        elif inner:
            # A union of sub-object shapes: it conforms if it matches one of them.
            attempts = [object_violations(value, child, option) for option in inner]
            if all(attempts):
                problems += min(attempts, key=len)
    return problems


def check_object(obj: Any) -> None:
    """Raise a 500 naming every violation (so any test that meets one fails)."""
    problems = object_violations(obj)
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise ConformanceError(f"{shown}{more}")
