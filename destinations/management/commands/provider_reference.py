from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from destinations.providers import reference


class Command(BaseCommand):
    help = (
        "Print the provider_config reference of every destination type (made from the providers' fields), "
        "or with --write put it into README.md between its provider-fields markers."
    )

    def add_arguments(self, parser):
        parser.add_argument("--write", action="store_true", help="Rewrite the block in README.md.")
        parser.add_argument("--readme", default=str(Path(settings.BASE_DIR) / "README.md"), help="The README to edit.")

    def handle(self, *args, write=False, readme="", **options):
        if not write:
            self.stdout.write(reference.markdown())
            return
        path = Path(readme)
        try:
            text = reference.replace_in(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        path.write_text(text, encoding="utf-8")
        self.stdout.write(f"Wrote the provider fields reference into {path}.")
