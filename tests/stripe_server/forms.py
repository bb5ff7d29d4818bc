"""Stripe's form encoding: `a[b][0][c]=x` pairs decoded into nested dicts and lists."""

import re
from typing import Any
from urllib.parse import parse_qsl

_PART = re.compile(r"\[([^\]]*)\]")


def _split(key: str) -> list[str]:
    head, _, rest = key.partition("[")
    parts = [head]
    if rest:
        parts += _PART.findall("[" + rest)
    return parts


def _listify(node: Any) -> Any:
    """Dicts whose keys are all integers (or appended with []) become lists, recursively."""
    if isinstance(node, dict):
        converted = {key: _listify(value) for key, value in node.items()}
        if converted and all(isinstance(key, int) for key in converted):
            return [converted[key] for key in sorted(converted)]
        return converted
    return node


def decode_form(body: str) -> dict[str, Any]:
    """Decode a form-encoded Stripe request body or query string into nested data."""
    root: dict[Any, Any] = {}
    append_counters: dict[int, int] = {}
    for raw_key, value in parse_qsl(body, keep_blank_values=True):
        parts = _split(raw_key)
        node = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            key: Any = part
            if part == "":
                key = append_counters.get(id(node), 0)
                append_counters[id(node)] = key + 1
            elif part.isdigit() and index > 0:
                key = int(part)
            if last:
                node[key] = value
            else:
                node = node.setdefault(key, {})
    return _listify(root)
