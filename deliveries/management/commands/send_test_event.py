from django.core.management.base import BaseCommand, CommandError

from deliveries.services import destination_test_send
from destinations.selectors import destination_lookup
from hookstream.errors import NotFound


class Command(BaseCommand):
    help = "Send a sample event to a destination through the real pipeline and print the delivery id."

    def add_arguments(self, parser):
        parser.add_argument("destination", help="Destination id or slug.")
        parser.add_argument("--org", help="Organization slug or id.")

    def handle(self, *args, destination, org=None, **options):
        try:
            dest = destination_lookup(destination, org)
        except NotFound as exc:
            raise CommandError(str(exc)) from None
        delivery = destination_test_send(destination=dest)
        self.stdout.write(f"Queued test delivery {delivery.pk} (event {delivery.event_id}) to {dest.pk}.")
