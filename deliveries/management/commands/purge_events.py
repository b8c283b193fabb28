from django.core.management.base import BaseCommand, CommandError

from deliveries.retention import parse_age, purge_events
from hookstream.ops import progress


class Command(BaseCommand):
    help = (
        "Delete events older than an age (e.g. 30d, 12h) with their deliveries, attempts and dead letters; "
        "events with unfinished deliveries are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", required=True, help="Age like 30d (days) or 12h (hours).")
        parser.add_argument("--batch-size", type=int, default=1000, help="Events deleted per batch (default 1000).")

    def handle(self, *args, older_than, batch_size, **options):
        try:
            age = parse_age(older_than)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        result = purge_events(
            age=age, batch_size=batch_size, on_batch=lambda d, t: progress(d, t, "purging", self.stderr)
        )
        self.stdout.write(
            f"Deleted {result['events']} event(s), {result['deliveries']} deliveries and "
            f"{result['attempts']} attempt(s) older than {older_than}."
        )
        if result["kept_unfinished"]:
            self.stdout.write(
                f"Kept {result['kept_unfinished']} older event(s) whose deliveries are not finished yet "
                "(pending, scheduled, held or in flight)."
            )
