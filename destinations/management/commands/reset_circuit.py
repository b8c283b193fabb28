from django.core.management.base import BaseCommand, CommandError

from deliveries.circuit import circuit_reset
from destinations.selectors import destination_lookup
from hookstream.errors import NotFound


class Command(BaseCommand):
    help = "Close a destination's circuit breaker by hand and release the deliveries it held."

    def add_arguments(self, parser):
        parser.add_argument("destination", help="Destination id or slug.")
        parser.add_argument("--org", help="Organization slug or id (needed when a slug is ambiguous).")

    def handle(self, *args, destination, org=None, **options):
        try:
            dest = destination_lookup(destination, org)
        except NotFound as exc:
            raise CommandError(str(exc)) from None
        circuit = circuit_reset(destination=dest)
        self.stdout.write(f"Circuit of {dest.pk} ({dest.slug}) is now {circuit.state}.")
