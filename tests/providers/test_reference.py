"""The README's provider_config reference is the providers' own field declarations."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.management import call_command

from destinations.providers import REGISTRY, reference

README = settings.BASE_DIR / "README.md"


def _block() -> str:
    return reference.current_in(README.read_text(encoding="utf-8"))


def test_the_readme_block_is_what_the_providers_declare():
    assert _block() == reference.markdown(), (
        "README.md's provider fields are out of date: run `python manage.py provider_reference --write`"
    )


def test_every_field_of_every_type_is_a_row_of_that_types_table():
    block = _block()
    tables = dict(re.findall(r"\*\*(\w+)\*\* — .*?\n\n((?:\|.*\n)+)", block))
    assert set(tables) == set(REGISTRY)
    for name, provider in REGISTRY.items():
        listed = re.findall(r"^\| `(\w+)` \|", tables[name], flags=re.M)
        assert listed == [spec.name for spec in provider.fields], name
        for spec in provider.fields:
            row = next(line for line in tables[name].splitlines() if line.startswith(f"| `{spec.name}` |"))
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]]
            assert cells[1] == ("yes" if spec.required else ""), (name, spec.name)
            assert cells[2] == ("yes" if spec.secret else ""), (name, spec.name)


def test_the_fields_that_were_missing_are_documented():
    block = _block()
    for name in ("endpoint", "protocol", "require_ack", "max_message_bytes", "max_entry_bytes", "session_token"):
        assert f"| `{name}` |" in block, name


def test_the_command_rewrites_a_stale_block_and_keeps_the_rest(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{reference.START}\nstale\n{reference.END}\n\nafter\n", encoding="utf-8")

    call_command("provider_reference", "--write", readme=str(readme))

    text = readme.read_text(encoding="utf-8")
    assert text == f"# Title\n\nbefore\n\n{reference.markdown()}\n\nafter\n"
