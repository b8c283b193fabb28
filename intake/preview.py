"""What a route (a connection or a subscription) would do with one event, without doing it.

The console's "Test against an event" tool: the route's filter rules evaluated on the event
exactly as ``intake.routing`` evaluates them at fan-out, rule by rule so that the page can say
which one failed and what it found; and its transform evaluated as the delivery worker does,
through ``intake.transforms.transform_apply`` — in a ``hookstream.sandbox`` child with the
time and memory limits of deliveries, never in this process. Nothing is stored or sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from intake import filters, transforms
from intake.models import Event


@dataclass
class RuleOutcome:
    """One filter rule and what it met in the event."""

    rule: dict
    matched: bool
    found: Any  # the value at the rule's path, or filters.UNDEFINED

    @property
    def value_text(self) -> str:
        return repr_json(self.rule.get("value"))

    @property
    def found_text(self) -> str:
        return "nothing (the path leads nowhere)" if self.found is filters.UNDEFINED else repr_json(self.found)


@dataclass
class RoutePreview:
    """The answer: ``rules_errors`` when the rules are not valid (then nothing is evaluated),
    else whether they match and each rule's outcome; then the transform's output (a JSON
    object) or its error. ``has_transform`` is False when the route has none (the event is
    delivered as received)."""

    rules_errors: list[str] = field(default_factory=list)
    rules: list[RuleOutcome] = field(default_factory=list)
    matched: bool | None = None
    has_transform: bool = False
    output: dict | None = None
    transform_error: str = ""
    # The error is a breached time, memory or output limit of the sandbox.
    transform_limit: bool = False


def repr_json(value) -> str:
    """A JSON value as one short line (the filter results show what a path found)."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = str(value)
    return text if len(text) <= 200 else text[:199] + "…"


def event_context(event: Event) -> dict:
    """The context the filter rules of a route see for ``event`` (as ``intake.routing``)."""
    return filters.event_context(
        payload=event.payload,
        headers=event.headers,
        method=event.method,
        content_type=event.content_type,
        source_ip=event.source_ip,
    )


def pasted_context(payload) -> dict:
    """The context of a pasted JSON body: a POST of ``application/json`` without headers."""
    return filters.event_context(
        payload=payload, headers={}, method="POST", content_type="application/json", source_ip=None
    )


def route_preview(*, filter_rules, transform_expression: str, context: dict) -> RoutePreview:
    """Evaluate a route's filter rules and transform on one event context.

    1. Check the rules (``filters.rules_errors``); when they are not valid, stop there.
    2. Evaluate each rule on the context; the route matches when all do.
    3. Evaluate the transform over the payload in the sandbox (``transform_apply``), whether
       or not the rules matched, so that it can be tried on any event.
    """
    preview = RoutePreview(rules_errors=filters.rules_errors(filter_rules))
    if preview.rules_errors:
        return preview
    for rule in filter_rules or []:
        preview.rules.append(
            RuleOutcome(
                rule=rule,
                matched=filters.rule_matches(rule, context),
                found=filters.resolve(context, rule["field"]),
            )
        )
    preview.matched = all(outcome.matched for outcome in preview.rules)
    preview.has_transform = bool(transform_expression)
    if not transform_expression:
        return preview
    try:
        preview.output = transforms.transform_apply(transform_expression, context["payload"])
    except transforms.TransformLimitExceeded as exc:
        preview.transform_error, preview.transform_limit = str(exc), True
    except transforms.TransformError as exc:
        preview.transform_error = f"transform failed: {exc}"
    except transforms.TransformUnavailable as exc:
        preview.transform_error = f"the sandbox could not run the transform now ({exc}); try again"
    return preview
