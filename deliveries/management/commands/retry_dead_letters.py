from collections import Counter

from django.core.management.base import BaseCommand, CommandError

from deliveries.circuit import circuit_reset
from deliveries.models import DeadLetter
from deliveries.services import RetryRefused, delivery_retry
from destinations.models import CircuitStateValue
from destinations.selectors import destination_circuit, destination_lookup
from hookstream.errors import NotFound
from hookstream.ops import parse_when, progress


class Command(BaseCommand):
    help = (
        "Retry a destination's dead letters now, optionally only those dead-lettered in a time range. "
        "While its circuit is open the retried deliveries are held (and may be dead-lettered again): "
        "--reset-circuit closes it first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--destination", required=True, help="Destination id or slug.")
        parser.add_argument("--org", help="Organization slug or id.")
        parser.add_argument("--since", help="ISO 8601 date-time: only dead letters created at or after it.")
        parser.add_argument("--until", help="ISO 8601 date-time: only dead letters created at or before it.")
        parser.add_argument(
            "--reset-circuit", action="store_true", help="Close the destination's circuit first (as reset_circuit)."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would be retried, by reason, and change nothing."
        )

    def handle(self, *args, destination, org=None, since=None, until=None, reset_circuit=False, dry_run=False, **_):
        try:
            dest = destination_lookup(destination, org)
        except NotFound as exc:
            raise CommandError(str(exc)) from None
        since_at, until_at = parse_when(since, "--since"), parse_when(until, "--until")
        if since_at and until_at and since_at > until_at:
            raise CommandError("--since must be before --until.")
        rows = DeadLetter.objects.filter(destination=dest).select_related("delivery", "delivery__destination")
        if since_at:
            rows = rows.filter(created_at__gte=since_at)
        if until_at:
            rows = rows.filter(created_at__lte=until_at)
        rows = list(rows.order_by("created_at", "id"))
        circuit = destination_circuit(destination=dest).state
        if dry_run:
            reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(Counter(r.reason for r in rows).items()))
            self.stdout.write(
                f"Would retry {len(rows)} dead letter(s) of {dest.pk}{f' ({reasons})' if reasons else ''}; "
                f"circuit {circuit}{', would be reset first' if reset_circuit else ''}. Nothing changed (--dry-run)."
            )
            return
        if reset_circuit:
            circuit_reset(destination=dest)
            self.stderr.write(f"Circuit of {dest.pk} reset (was {circuit}).")
        elif circuit != CircuitStateValue.CLOSED and rows:
            self.stderr.write(
                f"The circuit of {dest.pk} is {circuit}: the retried deliveries will be held until it closes, "
                "and dead-lettered again if it stays open longer than the retry window. "
                "Use --reset-circuit to close it first."
            )
        retried = refused = 0
        for index, dead_letter in enumerate(rows, 1):
            try:
                delivery_retry(delivery=dead_letter.delivery)
                retried += 1
            except RetryRefused as exc:
                refused += 1
                self.stderr.write(f"\n{dead_letter.delivery_id}: {exc}")
            progress(index, len(rows), "retrying", self.stderr)
        self.stdout.write(f"Retried {retried} dead letter(s) of {dest.pk}; {refused} refused.")
