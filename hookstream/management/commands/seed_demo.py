from django.core.management.base import BaseCommand

from hookstream import services
from hookstream.models import Organization


class Command(BaseCommand):
    help = "Create the demo organization and user (once) and print a new API key for it."

    def handle(self, *args, **options):
        org = Organization.objects.filter(slug="demo").first()
        if org is None:
            org = services.organization_create(name="Demo", slug="demo")
            services.user_create(username="demo", password="demo-password", organization=org)
            self.stdout.write("Created organization 'demo' and user demo / demo-password")
        key, raw = services.api_key_create(organization=org, name="demo key")
        self.stdout.write(self.style.SUCCESS(f"API key for organization {org.id}: {raw}"))
        self.stdout.write(f"  export HOOKSTREAM_API_KEY={raw}")
