"""The JSON parser of `POST /usage`: strict where Python's `json` is lenient.

Python keeps the last of duplicate keys silently (`{"quantity": 1, "quantity": 9}` is 9) and
recurses once per nesting level; a producer's body is a list of flat objects, so a duplicate
key or nesting deeper than `MAX_DEPTH` is refused with the field named.
"""

import codecs
import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 4  # a list of items (1), an item (2), a value that should have been a scalar


class BodyRefused(ParseError):
    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(message, code=code)
        self.refusal_code = code
        self.message = message
        self.field = field


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            shown = key[:40]
            raise BodyRefused(
                "duplicate_key", f"the key '{shown}' appears twice in one object", field=shown
            )
        seen[key] = value
    return seen


def json_depth(value: Any) -> int:
    """How deeply lists and objects nest (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _too_deep() -> BodyRefused:
    return BodyRefused(
        "too_deep", f"the body nests lists or objects more than {MAX_DEPTH} deep", field="body"
    )


def usage_body_load(text: str) -> Any:
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_constant)
    except RecursionError:
        raise _too_deep() from None
    except ValueError as exc:
        raise ParseError(f"JSON parse error - {exc}") from exc
    if json_depth(data) > MAX_DEPTH:
        raise _too_deep()
    return data


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class UsageJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        return usage_body_load(text)
