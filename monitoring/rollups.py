"""Metrics over time: hourly rollups that beat maintains, and the series served from them.

Beat (``monitoring.minute``) adds what happened since its last run — attempts per destination
(counts, duration sum and a latency histogram), dead letters per destination, events per
source — into one row per destination (or source) and hour, up to ``ROLL_LAG`` ago.
``RollupState`` remembers how far it got; the run holds its row locked, so two beats never
count the same minute twice. The first run starts ``BACKFILL`` back; a run rolls at most
``MAX_STEP`` so a long pause is caught up over a few runs.

A series (``/v1/metrics/volume|deliveries|latency``) reads the rollups up to that point and
the raw rows after it (a minute or two): its cost depends on the range, not on the table
size. Minute granularity reads raw rows, for ranges inside the last 48 hours only.

Latency percentiles come from the histogram (buckets ``LATENCY_BOUNDS_MS``), interpolated
within a bucket as Prometheus' ``histogram_quantile`` does; histograms add up, so a day's
percentiles are exact to the bucket.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import BigIntegerField, Count, F, Q, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, TruncDay, TruncHour, TruncMinute
from django.utils import timezone

from deliveries.models import AttemptStatus, DeadLetter, DeliveryAttempt
from intake.models import Event
from monitoring.models import DeliveryRollup, RollupState, VolumeRollup

LATENCY_BOUNDS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000)
ROLL_LAG = timedelta(seconds=30)  # an attempt is committed within this of its created_at
BACKFILL = timedelta(hours=48)
MAX_STEP = timedelta(hours=24)
RAW_WINDOW = timedelta(hours=48)
STATE = "metrics"
TRUNC = {"minute": TruncMinute, "hour": TruncHour, "day": TruncDay}


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _attempt_groups(rows, trunc, keys=("organization_id", "destination_id")) -> dict:
    """(bucket, *keys) → counts and histogram, from raw attempts."""
    cumulative = {f"le_{ms}": Count("pk", filter=Q(duration_ms__lte=ms)) for ms in LATENCY_BOUNDS_MS}
    result = {}
    for row in (
        rows.annotate(bucket=trunc("created_at"))
        .values("bucket", *keys)
        .annotate(
            total=Count("pk"),
            success=Count("pk", filter=Q(status=AttemptStatus.SUCCESS)),
            failed=Count("pk", filter=Q(status=AttemptStatus.FAILED)),
            timed=Count("duration_ms"),
            duration=Sum("duration_ms"),
            **cumulative,
        )
        .order_by()
    ):
        counts = [row[f"le_{ms}"] for ms in LATENCY_BOUNDS_MS] + [row["timed"]]
        histogram = [counts[0]] + [counts[i] - counts[i - 1] for i in range(1, len(counts))]
        result[(row["bucket"], *(row[k] for k in keys))] = {
            "attempt_count": row["total"],
            "success_count": row["success"],
            "failure_count": row["failed"],
            "duration_sum_ms": row["duration"] or 0,
            "latency_histogram": histogram,
        }
    return result


def _add_histograms(a: list, b: list) -> list:
    if not a:
        return list(b)
    if not b:
        return list(a)
    return [x + y for x, y in zip(a, b, strict=True)]


def rollups_advance(*, now: datetime | None = None) -> datetime:
    """Beat: roll raw rows up to ``now - ROLL_LAG``; returns how far the rollups now reach."""
    now = now or timezone.now()
    with transaction.atomic():
        state = RollupState.objects.select_for_update().filter(name=STATE).first()
        if state is None:
            RollupState.objects.get_or_create(name=STATE, defaults={"rolled_until": _hour(now - BACKFILL)})
            state = RollupState.objects.select_for_update().get(name=STATE)
        start = state.rolled_until
        end = min(now - ROLL_LAG, start + MAX_STEP)
        if end <= start:
            return start
        attempts = _attempt_groups(DeliveryAttempt.objects.filter(created_at__gte=start, created_at__lt=end), TruncHour)
        dead = defaultdict(int)
        for row in (
            DeadLetter.objects.filter(created_at__gte=start, created_at__lt=end)
            .annotate(bucket=TruncHour("created_at"))
            .values("bucket", "organization_id", "destination_id")
            .annotate(n=Count("pk"))
            .order_by()
        ):
            dead[(row["bucket"], row["organization_id"], row["destination_id"])] += row["n"]
        for key in set(attempts) | set(dead):
            bucket, organization_id, destination_id = key
            add = attempts.get(key, {})
            rollup, _ = DeliveryRollup.objects.select_for_update().get_or_create(
                destination_id=destination_id, bucket=bucket, defaults={"organization_id": organization_id}
            )
            for field in ("attempt_count", "success_count", "failure_count", "duration_sum_ms"):
                setattr(rollup, field, getattr(rollup, field) + add.get(field, 0))
            rollup.dead_letter_count += dead.get(key, 0)
            rollup.latency_histogram = _add_histograms(rollup.latency_histogram, add.get("latency_histogram", []))
            rollup.save()
        for row in (
            Event.objects.filter(received_at__gte=start, received_at__lt=end)
            .annotate(bucket=TruncHour("received_at"))
            .values("bucket", "organization_id", "source_id")
            .annotate(n=Count("pk"))
            .order_by()
        ):
            volume = VolumeRollup.objects.filter(
                organization_id=row["organization_id"], source_id=row["source_id"], bucket=row["bucket"]
            ).first() or VolumeRollup(
                organization_id=row["organization_id"], source_id=row["source_id"], bucket=row["bucket"]
            )
            volume.event_count += row["n"]
            volume.save()
        RollupState.objects.filter(name=STATE).update(rolled_until=end)
    return end


def rolled_until() -> datetime | None:
    return RollupState.objects.filter(name=STATE).values_list("rolled_until", flat=True).first()


# --- series --------------------------------------------------------------------------------


def _split(after: datetime, before: datetime, granularity: str) -> tuple[datetime, datetime]:
    """Where the range switches from rollups to raw rows: ``[after, edge)`` from rollups,
    ``[edge, before)`` raw. Minute granularity is raw throughout."""
    if granularity == "minute":
        return after, after
    edge = rolled_until() or after
    edge = min(max(edge, after), before)
    return after, edge


def _bucket(moment: datetime, granularity: str) -> datetime:
    if granularity == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment


_COUNT_FIELDS = ("attempt_count", "success_count", "failure_count", "dead_letter_count", "duration_sum_ms")
HISTOGRAM_SIZE = len(LATENCY_BOUNDS_MS) + 1
GROUPS = ("bucket", "destination")


def _merge(merged: dict, key: tuple, values: dict) -> None:
    current = merged.setdefault(key, {**{field: 0 for field in _COUNT_FIELDS}, "latency_histogram": []})
    for field in _COUNT_FIELDS:
        current[field] += values.get(field, 0)
    current["latency_histogram"] = _add_histograms(current["latency_histogram"], values.get("latency_histogram", []))


def _rollup_groups(rows, keys: dict) -> dict:
    """key → counts and histogram of ``DeliveryRollup`` rows, summed by the database (a
    month of fifty destinations is 36,000 rows: they are not read one by one)."""
    histogram = {f"h{i}": Sum(Cast(KT(f"latency_histogram__{i}"), BigIntegerField())) for i in range(HISTOGRAM_SIZE)}
    sums = {f"sum_{field}": Sum(field) for field in _COUNT_FIELDS}
    if keys:
        grouped = rows.annotate(**keys).values(*keys).annotate(**sums, **histogram).order_by()
    else:
        total = rows.aggregate(**sums, **histogram)
        grouped = [total] if total["sum_attempt_count"] is not None else []
    result = {}
    for row in grouped:
        counts = [row[f"h{i}"] or 0 for i in range(HISTOGRAM_SIZE)]
        result[tuple(row[key] for key in keys)] = {
            **{field: row[f"sum_{field}"] or 0 for field in _COUNT_FIELDS},
            "latency_histogram": counts if any(counts) else [],
        }
    return result


def delivery_totals(
    *,
    organization,
    after: datetime,
    before: datetime,
    granularity: str = "hour",
    by: tuple[str, ...] = GROUPS,
    destination_ids=None,
) -> dict:
    """Counts and latency histogram of the organization's attempts and dead letters over the
    range, keyed by ``by`` (a subset of ``("bucket", "destination")``, in that order; ``()``:
    one total under the key ``()``).

    Rollups up to where beat has rolled (the hour of ``after`` included), summed in the
    database, then the raw rows after that point (a minute or two): the cost depends on the
    range and the number of destinations, not on how many attempts there are.
    """
    _, edge = _split(after, before, granularity)
    merged: dict = {}

    def key(bucket, destination_id) -> tuple:
        return tuple(value for name, value in zip(GROUPS, (bucket, destination_id), strict=True) if name in by)

    if edge > after:
        rows = DeliveryRollup.objects.filter(organization=organization, bucket__gte=_hour(after), bucket__lt=edge)
        if destination_ids is not None:
            rows = rows.filter(destination_id__in=destination_ids)
        keys = {}
        if "bucket" in by:
            keys["k_bucket"] = TruncDay("bucket") if granularity == "day" else F("bucket")
        if "destination" in by:
            keys["k_destination"] = F("destination_id")
        for group, values in _rollup_groups(rows, keys).items():
            _merge(merged, group, values)
    raw_start = edge if edge > after else after
    if before > raw_start:
        rows = DeliveryAttempt.objects.filter(
            organization=organization, created_at__gte=raw_start, created_at__lt=before
        )
        dead = DeadLetter.objects.filter(organization=organization, created_at__gte=raw_start, created_at__lt=before)
        if destination_ids is not None:
            rows = rows.filter(destination_id__in=destination_ids)
            dead = dead.filter(destination_id__in=destination_ids)
        for (bucket, destination_id), values in _attempt_groups(
            rows, TRUNC[granularity], keys=("destination_id",)
        ).items():
            _merge(merged, key(bucket, destination_id), values)
        for row in (
            dead.annotate(bucket=TRUNC[granularity]("created_at"))
            .values("bucket", "destination_id")
            .annotate(n=Count("pk"))
            .order_by()
        ):
            _merge(merged, key(row["bucket"], row["destination_id"]), {"dead_letter_count": row["n"]})
    return merged


def delivery_series(
    *, organization, after: datetime, before: datetime, granularity: str, destination_id: str | None = None
) -> dict:
    """(bucket, destination_id) → counts and histogram over the range."""
    return delivery_totals(
        organization=organization,
        after=after,
        before=before,
        granularity=granularity,
        destination_ids=[destination_id] if destination_id else None,
    )


def volume_total(*, organization, after: datetime, before: datetime) -> int:
    """Events received over the range (rollups from the hour of ``after``, then raw rows)."""
    _, edge = _split(after, before, "hour")
    total = 0
    if edge > after:
        total += (
            VolumeRollup.objects.filter(organization=organization, bucket__gte=_hour(after), bucket__lt=edge).aggregate(
                n=Sum("event_count")
            )["n"]
            or 0
        )
    raw_start = edge if edge > after else after
    if before > raw_start:
        total += Event.objects.filter(
            organization=organization, received_at__gte=raw_start, received_at__lt=before
        ).count()
    return total


def volume_series(
    *, organization, after: datetime, before: datetime, granularity: str, source_id: str | None = None
) -> dict:
    """(bucket, source_id) → event count over the range."""
    _, edge = _split(after, before, granularity)
    merged: dict = defaultdict(int)
    if edge > after:
        rollups = VolumeRollup.objects.filter(organization=organization, bucket__gte=_hour(after), bucket__lt=edge)
        if source_id:
            rollups = rollups.filter(source_id=source_id)
        for rollup in rollups:
            merged[(_bucket(rollup.bucket, granularity), rollup.source_id)] += rollup.event_count
    raw_start = edge if edge > after else after
    if before > raw_start:
        rows = Event.objects.filter(organization=organization, received_at__gte=raw_start, received_at__lt=before)
        if source_id:
            rows = rows.filter(source_id=source_id)
        for row in (
            rows.annotate(bucket=TRUNC[granularity]("received_at"))
            .values("bucket", "source_id")
            .annotate(n=Count("pk"))
            .order_by()
        ):
            merged[(row["bucket"], row["source_id"])] += row["n"]
    return dict(merged)


def histogram_quantile(histogram: list[int], fraction: float) -> int | None:
    """The ``fraction`` quantile (ms) of a histogram over LATENCY_BOUNDS_MS, interpolated
    linearly inside its bucket; the last (unbounded) bucket answers its lower bound."""
    total = sum(histogram or [])
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(histogram):
        if seen + count >= rank and count:
            if index >= len(LATENCY_BOUNDS_MS):
                return LATENCY_BOUNDS_MS[-1]
            low = LATENCY_BOUNDS_MS[index - 1] if index else 0
            high = LATENCY_BOUNDS_MS[index]
            return round(low + (high - low) * (rank - seen) / count)
        seen += count
    return LATENCY_BOUNDS_MS[-1]
