"""Source schemas: an optional JSON Schema each event body of a source must match.

Validated with ``jsonschema`` (the dialect named by the schema's ``$schema``, Draft 2020-12
by default). A compiled validator is cached per schema text, so ingest pays for compiling a
schema once per process, not per request.
"""

from __future__ import annotations

import json
from functools import lru_cache

from jsonschema import exceptions as jsonschema_exceptions
from jsonschema import validators

MAX_ERRORS = 20


def schema_errors_of(schema) -> list[str]:
    """Why ``schema`` is not a JSON Schema (empty when it is one)."""
    if not isinstance(schema, dict | bool):
        return ["A JSON Schema is an object (or true/false)."]
    try:
        validators.validator_for(schema).check_schema(schema)
    except jsonschema_exceptions.SchemaError as exc:
        return [f"Not a valid JSON Schema: {exc.message}"]
    return []


@lru_cache(maxsize=256)
def _validator(schema_text: str):
    schema = json.loads(schema_text)
    return validators.validator_for(schema)(schema)


def _path(error) -> str:
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)


def payload_errors(*, schema, payload, is_json: bool) -> list[str]:
    """The validation errors of an event body against ``schema`` (``$.a.b: message``), at most
    ``MAX_ERRORS``; a body that is not JSON is one error."""
    if not is_json:
        return ["$: the body is not JSON"]
    validator = _validator(json.dumps(schema, sort_keys=True))
    errors = sorted(validator.iter_errors(payload), key=lambda error: list(error.absolute_path))
    return [f"{_path(error)}: {error.message}" for error in errors[:MAX_ERRORS]]
