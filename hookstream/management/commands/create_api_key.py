from django.core.management.base import BaseCommand, CommandError

from hookstream import services
from hookstream.models import Organization
from hookstream.ops import organization_lookup


class Command(BaseCommand):
    help = (
        "Create an API key for an organization and print it once (it is never shown again). "
        "The key stands alone on the last line of the output, for scripts."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Organization slug or id.")
        parser.add_argument("--name", default="cli key", help="A name for the key (default: 'cli key').")
        parser.add_argument(
            "--create-org", action="store_true", help="Create the organization (slug --org) when it does not exist."
        )

    def handle(self, *args, org, name, create_org, **options):
        if not name.strip():
            raise CommandError("--name must not be empty.")
        existing = Organization.objects.filter(slug=org).first() or Organization.objects.filter(pk=org).first()
        if existing is None and create_org:
            if not org.replace("-", "").isalnum() or org != org.lower():
                raise CommandError("--org must be a lowercase slug (letters, digits, dashes) to create it.")
            existing = services.organization_create(name=org.replace("-", " ").title(), slug=org)
            self.stdout.write(f"Created organization {existing.slug} ({existing.pk}).")
        organization = existing or organization_lookup(org)
        key, raw = services.api_key_create(organization=organization, name=name.strip())
        self.stdout.write(f"Created key {key.pk} ({key.name}) for {organization.slug}. Store it now:")
        self.stdout.write(raw)
