from django.core.management.base import BaseCommand
from django.db.models import Count, Q

from deliveries.models import DeliveryStatus
from destinations.models import Destination
from hookstream.ops import organization_lookup

COLUMNS = ("pending", "scheduled", "held", "dead")


class Command(BaseCommand):
    help = "Print a table per destination: pending, scheduled, held and dead deliveries, and circuit state."

    def add_arguments(self, parser):
        parser.add_argument("--org", help="Only this organization (slug or id).")

    def handle(self, *args, org=None, **options):
        rows = Destination.objects.select_related("organization", "circuit").order_by("organization__slug", "slug")
        if org:
            rows = rows.filter(organization=organization_lookup(org))
        rows = rows.annotate(
            **{
                name: Count("deliveries", filter=Q(deliveries__status=getattr(DeliveryStatus, name.upper())))
                for name in COLUMNS
            }
        )
        header = ("organization", "destination", "id", *COLUMNS, "circuit")
        table = [header]
        for dest in rows:
            circuit = getattr(dest, "circuit", None)
            table.append(
                (
                    dest.organization.slug,
                    dest.slug,
                    dest.pk,
                    *(str(getattr(dest, c)) for c in COLUMNS),
                    circuit.state if circuit else "closed",
                )
            )
        widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
        for row in table:
            self.stdout.write("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        self.stdout.write(f"{len(table) - 1} destination(s).")
