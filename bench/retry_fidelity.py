"""Retry fidelity: how late do retries start compared with the time the engine scheduled them?

    .venv/bin/python bench/retry_fidelity.py [--deliveries 1000] [--fail-attempts 1] [--intervals 1,2]

Runs the production shape (``bench.stack.Stack``) and a uvicorn receiver that answers 500 to
the first ``--fail-attempts`` attempts of every event (by ``X-hookstream-Delivery-Attempt``)
and 200 afterwards. One HTTP destination with a short schedule (``retry_backoff_type``
exponential, ``retry_intervals`` = ``--intervals`` seconds, the circuit breaker off so that
the deliberate failures do not hold deliveries). ``--deliveries`` events are ingested
through the real ingest endpoint; every one fails, is scheduled, and is retried.

*Scheduled* is the engine's own record: ``next_retry_at`` of attempt *n* (the moment the
engine set ``next_attempt_at`` to). *Actual* is the arrival of attempt *n + 1* at the
receiver. The figure is ``actual − scheduled`` per retry: p50/p99/max (goal: p99 < 1 s).
Both clocks are the same machine's ``time.time()``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import Stack, ingest, machine, percentile, print_json_line, print_table, start_receiver  # noqa: E402

GOAL_P99_S = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--fail-attempts", type=int, default=1, help="attempts of each event answered 500")
    parser.add_argument("--intervals", default="1,2", help="retry_intervals in seconds (default 1,2)")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--db-name", default="hs_bench_a")
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument("--celery-concurrency", type=int, default=8)
    args = parser.parse_args()
    intervals = [int(x) for x in args.intervals.split(",") if x.strip()]

    with (
        Stack(db_name=args.db_name, redis_db=args.redis_db, celery_concurrency=args.celery_concurrency) as stack,
        start_receiver() as receiver,
    ):
        destination = stack.http_destination(
            receiver.url_for(fail_attempts=args.fail_attempts, tag="retry"),
            name="flaky receiver",
            timeout_ms=10000,
            retry_backoff_type="exponential",
            retry_intervals=intervals,
            retry_max_attempts=max(args.fail_attempts, 1),
            circuit_breaker_enabled=False,
        )
        source, ingest_url = stack.source_to(destination["id"], name="retry source")
        started = time.time()
        sent = ingest(ingest_url, args.deliveries, args.senders)
        accepted = {row[0] for row in sent if row[3] == 200 and row[0]}
        ingest_s = time.time() - started

        deadline = time.monotonic() + args.timeout
        finished = 0
        while time.monotonic() < deadline:
            finished = stack.sql(
                "SELECT count(*) FROM deliveries_delivery WHERE destination_id = %s "
                "AND status IN ('succeeded', 'dead')",
                (destination["id"],),
            )[0][0]
            if finished >= len(accepted):
                break
            time.sleep(0.25)
        total_s = time.time() - started
        time.sleep(0.3)
        records = receiver.records()
        scheduled_rows = stack.sql(
            "SELECT d.event_id, a.attempt_number, extract(epoch FROM a.next_retry_at) "
            "FROM deliveries_deliveryattempt a JOIN deliveries_delivery d ON d.id = a.delivery_id "
            "WHERE a.destination_id = %s AND a.next_retry_at IS NOT NULL",
            (destination["id"],),
        )
        states = dict(
            stack.sql(
                "SELECT status, count(*) FROM deliveries_delivery WHERE destination_id = %s GROUP BY status",
                (destination["id"],),
            )
        )

    arrivals: dict[tuple[str, int], float] = {}
    for record in records:
        key = (record["event_id"], record["attempt"])
        arrivals.setdefault(key, record["at"])
    lateness = []
    missing = 0
    for event_id, attempt_number, scheduled in scheduled_rows:
        arrived = arrivals.get((event_id, attempt_number + 1))
        if arrived is None:
            missing += 1
            continue
        lateness.append(arrived - float(scheduled))
    early = sum(1 for x in lateness if x < -0.005)
    p50, p99 = percentile(lateness, 50), percentile(lateness, 99)
    worst = max(lateness) if lateness else None
    ok = p99 is not None and p99 < GOAL_P99_S and missing == 0

    print_table(
        [
            ["deliveries (events ingested)", len(accepted), f"ingested in {ingest_s:.1f} s"],
            ["retries scheduled (attempt rows with next_retry_at)", len(scheduled_rows), f"intervals {intervals} s"],
            ["retries seen at the receiver", len(lateness), f"{missing} not seen"],
            ["final states", ", ".join(f"{k} {v}" for k, v in sorted(states.items())), f"after {total_s:.1f} s"],
            ["lateness p50 (s)", round(p50, 3) if p50 is not None else None, "actual − scheduled"],
            ["lateness p99 (s) (goal < 1 s)", round(p99, 3) if p99 is not None else None, "PASS" if ok else "FAIL"],
            ["lateness max (s)", round(worst, 3) if worst is not None else None, ""],
            ["retries arriving early (> 5 ms before)", early, "should be 0"],
        ],
        ["figure", "value", "note"],
        title="Retry fidelity (receiver fails the first attempt(s) with 500)",
    )
    print(
        "\nScheduled = next_retry_at of the failed attempt (the engine's own record); actual = arrival "
        "of the next attempt at the receiver. Same machine clock."
    )
    print_json_line(
        {
            "benchmark": "retry_fidelity",
            "deliveries": len(accepted),
            "retries": len(lateness),
            "missing": missing,
            "early": early,
            "intervals_s": intervals,
            "lateness_s_p50": round(p50, 4) if p50 is not None else None,
            "lateness_s_p99": round(p99, 4) if p99 is not None else None,
            "lateness_s_max": round(worst, 4) if worst is not None else None,
            "goal_p99_s": GOAL_P99_S,
            "states": states,
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
