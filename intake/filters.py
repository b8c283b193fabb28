"""Filter rules of connections and subscriptions (spec §5): validation and evaluation.

A rule is ``{"field": <path>, "op": <operator>, "value": <operand>}``; every rule of a route
must match (AND). Paths:

- ``payload`` / ``payload.a.b`` / ``payload.items.0.id`` — the JSON body (list items by index);
- ``headers.<name>`` — a request header, name case-insensitive;
- ``method``, ``content_type``, ``source_ip``.

A path that leads nowhere is *undefined*: ``exists: false`` and ``neq`` match it, every other
operator does not. Comparisons never coerce: ``"5"`` is not ``5``, ``true`` is not ``1``, and
``gt``/``gte``/``lt``/``lte`` match only when both sides are numbers.

``rules_match`` is a pure function of the rules and an event context (``event_context``).
"""

from __future__ import annotations

from typing import Any

OPERATORS = ("eq", "neq", "contains", "gt", "gte", "lt", "lte", "exists", "in")
TOP_LEVEL_FIELDS = ("method", "content_type", "source_ip")
MAX_RULES = 50
MAX_PATH_LENGTH = 500


class _Undefined:
    """A path that leads nowhere (distinct from a JSON ``null``)."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = _Undefined()


def event_context(*, payload, headers: dict, method: str, content_type: str, source_ip: str | None) -> dict:
    """What rules are evaluated on; header names are lower-cased once here."""
    return {
        "payload": payload,
        "headers": {str(name).lower(): value for name, value in (headers or {}).items()},
        "method": method,
        "content_type": content_type,
        "source_ip": source_ip,
    }


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json_kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if _is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def strict_equal(left, right) -> bool:
    """JSON equality without coercion: ``1 == 1.0`` but ``1 != true`` and ``"1" != 1``."""
    if _json_kind(left) != _json_kind(right):
        return False
    if isinstance(left, list):
        return len(left) == len(right) and all(strict_equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(strict_equal(left[k], right[k]) for k in left)
    return left == right


def resolve(context: dict, path: str):
    """The value at ``path`` in ``context``, or ``UNDEFINED``."""
    head, _, rest = path.partition(".")
    if head in TOP_LEVEL_FIELDS:
        if rest:
            return UNDEFINED
        value = context.get(head)
        return UNDEFINED if value in (None, "") else value
    if head == "headers":
        if not rest:
            return UNDEFINED
        return context["headers"].get(rest.lower(), UNDEFINED)
    if head != "payload":
        return UNDEFINED
    value = context.get("payload")
    if value is None and not rest:
        # No JSON body at all (a JSON ``null`` body is indistinguishable here; treat both as absent).
        return UNDEFINED
    if not rest:
        return value
    for part in rest.split("."):
        if isinstance(value, dict):
            if part not in value:
                return UNDEFINED
            value = value[part]
        elif isinstance(value, list) and part.isdigit():
            index = int(part)
            if index >= len(value):
                return UNDEFINED
            value = value[index]
        else:
            return UNDEFINED
    return value


def rule_matches(rule: dict, context: dict) -> bool:
    actual = resolve(context, rule["field"])
    op = rule["op"]
    expected = rule.get("value")
    if op == "exists":
        return (actual is not UNDEFINED) is expected
    if actual is UNDEFINED:
        # "is not equal to x" holds for something that is not there; nothing else does.
        return op == "neq"
    if op == "eq":
        return strict_equal(actual, expected)
    if op == "neq":
        return not strict_equal(actual, expected)
    if op == "contains":
        return isinstance(actual, str) and isinstance(expected, str) and expected in actual
    if op in ("gt", "gte", "lt", "lte"):
        if not (_is_number(actual) and _is_number(expected)):
            return False
        if op == "gt":
            return actual > expected
        if op == "gte":
            return actual >= expected
        if op == "lt":
            return actual < expected
        return actual <= expected
    if op == "in":
        return isinstance(expected, list) and any(strict_equal(actual, candidate) for candidate in expected)
    return False


def rules_match(rules: list[dict] | None, context: dict) -> bool:
    """True when every rule matches (an empty list matches everything)."""
    return all(rule_matches(rule, context) for rule in rules or [])


def _path_error(field: Any) -> str | None:
    if not isinstance(field, str) or not field:
        return "field must be a non-empty string path"
    if len(field) > MAX_PATH_LENGTH:
        return f"field is longer than {MAX_PATH_LENGTH} characters"
    head, dot, rest = field.partition(".")
    if head in TOP_LEVEL_FIELDS:
        return None if not dot else f"{head} has no sub-fields"
    if head == "headers":
        return None if rest else "headers needs a header name, e.g. headers.x-event-type"
    if head == "payload":
        if dot and any(part == "" for part in rest.split(".")):
            return "field has an empty path segment"
        return None
    return "field must start with payload, headers., method, content_type or source_ip"


def rules_errors(rules: Any) -> list[str]:
    """What is wrong with ``rules`` (empty when they are valid)."""
    if rules is None:
        return []
    if not isinstance(rules, list):
        return ["must be an array of rules"]
    if len(rules) > MAX_RULES:
        return [f"at most {MAX_RULES} rules"]
    errors = []
    for index, rule in enumerate(rules):
        where = f"rule {index}"
        if not isinstance(rule, dict):
            errors.append(f"{where}: must be an object with field, op and value")
            continue
        unknown = set(rule) - {"field", "op", "value"}
        if unknown:
            errors.append(f"{where}: unknown keys {sorted(unknown)}")
        path_error = _path_error(rule.get("field"))
        if path_error:
            errors.append(f"{where}: {path_error}")
        op = rule.get("op")
        if op not in OPERATORS:
            errors.append(f"{where}: op must be one of {', '.join(OPERATORS)}")
            continue
        if "value" not in rule:
            errors.append(f"{where}: value is required")
            continue
        value = rule["value"]
        if op in ("gt", "gte", "lt", "lte") and not _is_number(value):
            errors.append(f"{where}: {op} needs a number value")
        elif op == "contains" and not isinstance(value, str):
            errors.append(f"{where}: contains needs a string value")
        elif op == "exists" and not isinstance(value, bool):
            errors.append(f"{where}: exists needs true or false")
        elif op == "in" and not isinstance(value, list):
            errors.append(f"{where}: in needs an array value")
    return errors
