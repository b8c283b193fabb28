"""Filter rules: every operator, type mismatches and missing paths (a pure function)."""

import pytest

from intake.filters import event_context, rules_errors, rules_match

CONTEXT = event_context(
    payload={
        "type": "order.created",
        "amount": 250,
        "ratio": 0.5,
        "paid": True,
        "note": None,
        "count_text": "5",
        "customer": {"email": "ann@example.com", "tier": "gold"},
        "items": [{"sku": "A-1"}, {"sku": "B-2"}],
        "tags": ["new", "vip"],
    },
    headers={"X-Event-Type": "order.created", "Content-Type": "application/json"},
    method="POST",
    content_type="application/json",
    source_ip="203.0.113.7",
)

# (field, op, value, expected)
CASES = [
    # eq
    ("payload.type", "eq", "order.created", True),
    ("payload.type", "eq", "order.paid", False),
    ("payload.amount", "eq", 250, True),
    ("payload.amount", "eq", 250.0, True),
    ("payload.amount", "eq", "250", False),  # no coercion
    ("payload.paid", "eq", True, True),
    ("payload.paid", "eq", 1, False),  # true is not 1
    ("payload.note", "eq", None, True),  # a JSON null is defined
    ("payload.customer", "eq", {"email": "ann@example.com", "tier": "gold"}, True),
    ("payload.customer.tier", "eq", "gold", True),
    ("payload.items.1.sku", "eq", "B-2", True),
    ("payload.missing", "eq", None, False),  # undefined is not null
    # neq
    ("payload.type", "neq", "order.paid", True),
    ("payload.type", "neq", "order.created", False),
    ("payload.count_text", "neq", 5, True),  # "5" is not 5
    ("payload.missing", "neq", "x", True),  # undefined is not equal to anything
    # contains (strings only)
    ("payload.customer.email", "contains", "@example.com", True),
    ("payload.customer.email", "contains", "@other.org", False),
    ("payload.tags", "contains", "vip", False),  # arrays are not strings
    ("payload.amount", "contains", "25", False),
    ("payload.missing", "contains", "x", False),
    # gt gte lt lte (numbers only)
    ("payload.amount", "gt", 100, True),
    ("payload.amount", "gt", 250, False),
    ("payload.amount", "gte", 250, True),
    ("payload.amount", "gte", 251, False),
    ("payload.amount", "lt", 300, True),
    ("payload.amount", "lt", 250, False),
    ("payload.amount", "lte", 250, True),
    ("payload.amount", "lte", 249.99, False),
    ("payload.ratio", "lt", 1, True),
    ("payload.count_text", "gt", 1, False),  # "5" is a string: no coercion
    ("payload.paid", "gt", 0, False),  # true is not a number
    ("payload.missing", "lt", 1, False),
    ("payload.note", "lt", 1, False),
    # exists
    ("payload.customer.email", "exists", True, True),
    ("payload.customer.phone", "exists", True, False),
    ("payload.customer.phone", "exists", False, True),
    ("payload.note", "exists", True, True),  # null is there
    ("payload.type.deeper", "exists", True, False),  # through a string
    ("payload.items.9.sku", "exists", True, False),  # past the end of a list
    # in
    ("payload.type", "in", ["order.created", "order.paid"], True),
    ("payload.type", "in", ["order.paid"], False),
    ("payload.amount", "in", [100, 250], True),
    ("payload.amount", "in", ["250"], False),
    ("payload.missing", "in", [None], False),
    # headers (case-insensitive), method, content_type, source_ip
    ("headers.x-event-type", "eq", "order.created", True),
    ("headers.X-EVENT-TYPE", "eq", "order.created", True),
    ("headers.x-missing", "exists", False, True),
    ("method", "eq", "POST", True),
    ("method", "in", ["PUT", "PATCH"], False),
    ("content_type", "contains", "json", True),
    ("source_ip", "eq", "203.0.113.7", True),
    ("source_ip", "neq", "198.51.100.1", True),
]


@pytest.mark.parametrize(("field", "op", "value", "expected"), CASES)
def test_it_evaluates_each_operator(field, op, value, expected):
    assert rules_errors([{"field": field, "op": op, "value": value}]) == []
    assert rules_match([{"field": field, "op": op, "value": value}], CONTEXT) is expected


def test_it_ands_every_rule():
    yes = {"field": "payload.type", "op": "eq", "value": "order.created"}
    no = {"field": "payload.amount", "op": "gt", "value": 1000}
    assert rules_match([yes], CONTEXT)
    assert not rules_match([yes, no], CONTEXT)
    assert rules_match([], CONTEXT)


def test_it_treats_a_missing_body_as_undefined():
    context = event_context(payload=None, headers={}, method="GET", content_type="", source_ip=None)
    assert rules_match([{"field": "payload", "op": "exists", "value": False}], context)
    assert not rules_match([{"field": "payload.a", "op": "eq", "value": None}], context)
    assert rules_match([{"field": "content_type", "op": "exists", "value": False}], context)
    assert rules_match([{"field": "source_ip", "op": "exists", "value": False}], context)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"field": "payload.a"}, "must be an array"),
        (["payload.a"], "must be an object"),
        ([{"field": "payload.a", "op": "like", "value": 1}], "op must be one of"),
        ([{"field": "payload.a", "op": "eq"}], "value is required"),
        ([{"field": "body.a", "op": "eq", "value": 1}], "field must start with"),
        ([{"field": "", "op": "eq", "value": 1}], "non-empty string"),
        ([{"field": "payload..a", "op": "eq", "value": 1}], "empty path segment"),
        ([{"field": "headers", "op": "eq", "value": 1}], "header name"),
        ([{"field": "method.x", "op": "eq", "value": 1}], "no sub-fields"),
        ([{"field": "payload.a", "op": "gt", "value": "10"}], "gt needs a number"),
        ([{"field": "payload.a", "op": "lte", "value": True}], "lte needs a number"),
        ([{"field": "payload.a", "op": "contains", "value": 1}], "contains needs a string"),
        ([{"field": "payload.a", "op": "exists", "value": "yes"}], "exists needs true or false"),
        ([{"field": "payload.a", "op": "in", "value": "a"}], "in needs an array"),
        ([{"field": "payload.a", "op": "eq", "value": 1, "extra": 2}], "unknown keys"),
    ],
)
def test_it_says_what_is_wrong_with_a_rule(rules, message):
    errors = rules_errors(rules)
    assert errors and any(message in error for error in errors), errors
