from django.core.management.base import BaseCommand

from deliveries.services import destination_test_send
from hookstream.ops import destination_lookup


class Command(BaseCommand):
    help = "Send a sample event to a destination through the real pipeline and print the delivery id."

    def add_arguments(self, parser):
        parser.add_argument("destination", help="Destination id or slug.")
        parser.add_argument("--org", help="Organization slug or id.")

    def handle(self, *args, destination, org=None, **options):
        dest = destination_lookup(destination, org)
        delivery = destination_test_send(destination=dest)
        self.stdout.write(f"Queued test delivery {delivery.pk} (event {delivery.event_id}) to {dest.pk}.")
