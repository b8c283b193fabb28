"""The API's one JSON parser: refuses up front what PostgreSQL could not store."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError

from hookstream.jsonsafe import NotStorable, path_text, storable_loads


class StorableJSONParser(parsers.JSONParser):
    """DRF's JSON parser, answering 400 (not a database error or a 500 later) for NaN,
    Infinity, numbers beyond the float range, lone surrogates, NUL in strings and nesting
    deeper than ``hookstream.jsonsafe.MAX_DEPTH``.

    The body is never larger than ``HOOKSTREAM_MAX_BODY_BYTES`` here:
    ``RequestInputMiddleware`` answered 413 before.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read()
        try:
            return storable_loads(raw)
        except NotStorable as exc:
            if exc.path and isinstance(exc.path[0], str):
                # Named after the top-level field, like any other field error.
                raise ValidationError({exc.path[0]: [f"Cannot be stored: {exc} (at {path_text(exc.path)})."]}) from None
            raise ParseError(f"JSON that cannot be stored: {exc}.") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
