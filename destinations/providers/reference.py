"""The reference of every ``provider_config`` field, made from the providers' own ``fields``.

README.md carries :func:`markdown` between ``<!-- provider-fields:start -->`` and
``<!-- provider-fields:end -->``; ``python manage.py provider_reference --write`` rewrites it,
and ``tests/providers/test_reference.py`` fails when the README and the code disagree. So a
field added to a provider cannot be missing from the documentation.
"""

from __future__ import annotations

from destinations.providers.base import REGISTRY, ConfigField, Provider

START = "<!-- provider-fields:start -->"
END = "<!-- provider-fields:end -->"

_KINDS = {str: "string", int: "integer", bool: "boolean", dict: "object", list: "array"}


def _kind(spec: ConfigField) -> str:
    if spec.choices:
        return " | ".join(f"`{choice}`" for choice in spec.choices)
    if spec.url_schemes:
        return "URL: " + ", ".join(f"`{scheme}://`" for scheme in spec.url_schemes)
    if spec.hosts:
        return "`host:port` (a list: comma-separated)"
    if spec.headers:
        return "object: header name → value"
    if spec.header_name:
        return "header name"
    kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
    return " or ".join(_KINDS.get(kind, kind.__name__) for kind in kinds)


def _default(spec: ConfigField) -> str:
    if spec.default is None:
        return ""
    if spec.default == "":
        return '`""`'
    if isinstance(spec.default, bool):
        return f"`{str(spec.default).lower()}`"
    return f"`{spec.default}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def rows(provider: type[Provider]) -> list[tuple[str, ...]]:
    """(field, required, secret, value, default, notes) for each field of ``provider``, the
    destination's ``url`` column first when the type uses it."""
    result: list[tuple[str, ...]] = []
    if provider.uses_url:
        required = "yes" if provider.url_required else ""
        note = "the destination's `url` column"
        if provider.url_config_field:
            note += f" (or `provider_config.{provider.url_config_field}`)"
        value = "URL: " + ", ".join(f"`{scheme}://`" for scheme in provider.url_schemes)
        result.append(("`url` (column)", required, "", value, "", _cell(note)))
    for spec in provider.fields:
        result.append(
            (
                f"`{spec.name}`",
                "yes" if spec.required else "",
                "yes" if spec.secret else "",
                _cell(_kind(spec)),
                _cell(_default(spec)),
                _cell(spec.help),
            )
        )
    return result


def markdown() -> str:
    """One table per registered type, in registration order (the API's order)."""
    parts = [
        START,
        "<!-- generated from destinations/providers/*.py by `python manage.py provider_reference --write`;"
        " do not edit by hand -->",
    ]
    for name, provider in REGISTRY.items():
        parts.append("")
        parts.append(f"**{name}** — {provider.description}")
        parts.append("")
        parts.append("| field | required | secret | value | default | notes |")
        parts.append("|---|---|---|---|---|---|")
        parts.extend("| " + " | ".join(row) + " |" for row in rows(provider))
    parts.append("")
    parts.append(END)
    return "\n".join(parts)


def replace_in(text: str) -> str:
    """``text`` (the README) with the part between the markers replaced by :func:`markdown`.
    Raises ValueError when the markers are missing."""
    start = text.find(START)
    end = text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no {START} … {END} block")
    return text[:start] + markdown() + text[end + len(END) :]


def current_in(text: str) -> str:
    """The block between the markers, markers included ("" without them)."""
    start = text.find(START)
    end = text.find(END)
    if start < 0 or end < start:
        return ""
    return text[start : end + len(END)]
