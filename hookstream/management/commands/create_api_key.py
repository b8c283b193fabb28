from django.core.management.base import BaseCommand, CommandError

from hookstream import services
from hookstream.ops import organization_lookup


class Command(BaseCommand):
    help = "Create an API key for an organization and print it once (it is never shown again)."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Organization slug or id.")
        parser.add_argument("--name", required=True, help="A name for the key.")

    def handle(self, *args, org, name, **options):
        if not name.strip():
            raise CommandError("--name must not be empty.")
        organization = organization_lookup(org)
        key, raw = services.api_key_create(organization=organization, name=name.strip())
        self.stderr.write(f"Created key {key.pk} ({key.name}) for {organization.slug}. Store it now:")
        self.stdout.write(raw)
