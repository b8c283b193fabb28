"""Delivery throughput: N events ingested for one HTTP destination, delivered to a fast receiver.

    .venv/bin/python bench/delivery_throughput.py [--events 5000] [--senders 4]

Runs the production shape (``bench.stack.Stack``: PostgreSQL, Redis, gunicorn, a Celery
worker with the Procfile's flags, beat) and a uvicorn receiver in its own process. Steps:

1. **Baseline**: a raw ``requests.Session`` keep-alive loop posts the same body to the same
   receiver (one process, sequential) — the speed of one Python HTTP sender on this machine.
2. **Run**: ``--senders`` processes post the events to the real ingest endpoint
   (``POST /v1/ingest/<source>``) with keep-alive, as fast as it answers; the worker delivers.
3. **Figures**: deliveries/s from the first ingest request to the last receipt (each event
   counted once), p50/p99 of ingest-to-receipt latency (from the start of the ingest request
   to the arrival at the receiver), the ratio to the baseline (goal ≥ 0.5), and SQL
   statements per delivered event (goal ≤ 6).

Statements are counted for real inside the worker processes (``Stack(count_queries=True)``:
a Django execute wrapper attributes every statement to the Celery task running in that
thread; BEGIN/COMMIT are transaction control, not statements, and are not counted).
``pg_stat_database.xact_commit`` of the benchmark database gives the transactions of every
process (ingest included) as a cross-check.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import (  # noqa: E402
    Stack,
    event_body,
    ingest,
    machine,
    percentile,
    print_json_line,
    print_table,
    start_receiver,
)

GOAL_RATIO = 0.5
GOAL_QUERIES = 6.0
SKIP = {"connections"}


def baseline(url: str, count: int) -> float:
    """Requests per second of one sequential keep-alive ``requests.Session`` loop."""
    import requests

    bodies = [event_body(i) for i in range(count)]
    headers = {"Content-Type": "application/json"}
    with requests.Session() as session:
        for body in bodies[:50]:  # warm up: connection, code paths
            session.post(url, data=body, headers=headers, timeout=10).raise_for_status()
        started = time.perf_counter()
        for body in bodies:
            session.post(url, data=body, headers=headers, timeout=10).raise_for_status()
        return count / (time.perf_counter() - started)


def engine_drain(stack: Stack, receiver, destination_id: str, timeout: float) -> dict:
    """The engine alone: the delivered deliveries made due again and drained by a fresh worker.

    With the worker stopped, every succeeded delivery of the destination is put back to
    ``pending`` in SQL (what a manual retry does) and its wake-up is sent to the broker; then
    the worker starts and drains them. Deliveries/s from the first to the last receipt, so
    neither ingest nor the worker's start-up is in the figure.
    """
    stack.workers_stop()
    ids = [
        row[0]
        for row in stack.sql(
            "UPDATE deliveries_delivery SET status = 'pending', next_attempt_at = now(), woken_at = now(), "
            "completed_at = NULL, cycle_start_attempt = attempt_count, trigger_type = 'manual' "
            "WHERE destination_id = %s AND status = 'succeeded' RETURNING id",
            (destination_id,),
        )
    ]
    stack.enqueue_deliveries(ids)
    receiver.reset()
    queries_before = stack.worker_queries()
    stack.workers_start()
    arrived = receiver.wait_for(len(ids), timeout=timeout)
    time.sleep(0.5)
    queries_after = stack.worker_queries()
    times = sorted({r["event_id"]: r["at"] for r in reversed(receiver.records())}.values())
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    task = "deliveries.deliver"
    statements = queries_after.get(task, 0) - queries_before.get(task, 0)
    return {
        "deliveries": len(ids),
        "arrived": arrived,
        "delivered": len(times),
        "rate": rate,
        "statements_per_event": statements / len(times) if times else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--senders", type=int, default=4, help="ingest client processes (default 4)")
    parser.add_argument("--baseline-requests", type=int, default=3000)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the last delivery")
    parser.add_argument("--db-name", default="hs_bench_a")
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument("--celery-workers", type=int, default=1)
    parser.add_argument("--celery-pool", default="threads")
    parser.add_argument("--celery-concurrency", type=int, default=8)
    parser.add_argument("--skip-drain", action="store_true", help="skip the engine-only drain phase")
    args = parser.parse_args()

    with (
        Stack(
            db_name=args.db_name,
            redis_db=args.redis_db,
            celery_workers=args.celery_workers,
            celery_pool=args.celery_pool,
            celery_concurrency=args.celery_concurrency,
            count_queries=True,
        ) as stack,
        start_receiver(log_dir=None) as receiver,
    ):
        destination = stack.http_destination(receiver.url_for(tag="engine"), name="fast receiver", timeout_ms=10000)
        source, ingest_url = stack.source_to(destination["id"], name="throughput source")

        baseline_rps = baseline(receiver.url_for(tag="baseline"), args.baseline_requests)
        receiver.reset()
        time.sleep(1.0)  # let beat's first ticks and the workers' startup queries pass
        queries_before = stack.worker_queries()
        db_before = stack.database_counters()

        started = time.time()
        sent = ingest(ingest_url, args.events, args.senders)
        ingest_done = time.time()
        accepted = {row[0]: row for row in sent if row[3] == 200 and row[0]}
        arrived = receiver.wait_for(len(accepted), timeout=args.timeout)
        waited = time.time()
        time.sleep(0.5)  # the last tasks finish recording their attempts
        queries_after = stack.worker_queries()
        db_after = stack.database_counters()
        records = receiver.records()
        succeeded = stack.sql(
            "SELECT count(*) FROM deliveries_delivery WHERE destination_id = %s AND status = 'succeeded'",
            (destination["id"],),
        )[0][0]
        drain = engine_drain(stack, receiver, destination["id"], args.timeout) if not args.skip_drain else None

    first_receipt: dict[str, float] = {}
    for record in records:
        if record["event_id"] in accepted and record["event_id"] not in first_receipt:
            first_receipt[record["event_id"]] = record["at"]
    delivered = len(first_receipt)
    duplicates = sum(1 for r in records if r["event_id"] in accepted) - delivered
    last_receipt = max(first_receipt.values()) if first_receipt else waited
    elapsed = last_receipt - started
    rate = delivered / elapsed if elapsed > 0 else 0.0
    latencies = [(first_receipt[e] - accepted[e][1]) * 1000 for e in first_receipt]
    ingest_rate = len(sent) / (ingest_done - started)
    ingest_ms = [(row[2] - row[1]) * 1000 for row in sent]

    deliver_task = "deliveries.deliver"
    statements = queries_after.get(deliver_task, 0) - queries_before.get(deliver_task, 0)
    tasks = queries_after.get(f"tasks:{deliver_task}", 0) - queries_before.get(f"tasks:{deliver_task}", 0)
    all_statements = sum(v for k, v in queries_after.items() if k not in SKIP and not k.startswith("tasks:")) - sum(
        v for k, v in queries_before.items() if k not in SKIP and not k.startswith("tasks:")
    )
    per_event = statements / delivered if delivered else None
    all_per_event = all_statements / delivered if delivered else None
    xacts = db_after.get("xact_commit", 0) - db_before.get("xact_commit", 0)
    ratio = rate / baseline_rps if baseline_rps else None

    drain_rows = []
    drain_ratio = None
    if drain:
        drain_ratio = drain["rate"] / baseline_rps if baseline_rps else None
        drain_rows = [
            [
                "engine drain (deliveries/s)",
                round(drain["rate"], 1),
                f"{drain['delivered']} of {drain['deliveries']} re-driven, worker only, first → last receipt",
            ],
            [
                "engine drain ratio (goal ≥ 0.5)",
                round(drain_ratio, 3) if drain_ratio else None,
                "PASS" if drain_ratio and drain_ratio >= GOAL_RATIO else "FAIL",
            ],
            [
                "engine drain statements per delivery",
                round(drain["statements_per_event"], 2) if drain["statements_per_event"] is not None else None,
                "",
            ],
        ]
    print_table(
        [
            ["events ingested (200)", len(accepted), f"of {len(sent)} sent by {args.senders} processes"],
            ["ingest rate", round(ingest_rate, 1), "requests/s while sending"],
            ["ingest latency p50 / p99 (ms)", f"{percentile(ingest_ms, 50):.1f} / {percentile(ingest_ms, 99):.1f}", ""],
            ["delivered (distinct events)", delivered, f"{arrived} requests arrived, {duplicates} repeats"],
            ["succeeded deliveries in the database", succeeded, ""],
            ["delivery throughput (deliveries/s)", round(rate, 1), "first ingest → last receipt"],
            ["baseline requests.Session loop (req/s)", round(baseline_rps, 1), "same receiver, same run"],
            [
                "ratio (goal ≥ 0.5)",
                round(ratio, 3) if ratio else None,
                "PASS" if ratio and ratio >= GOAL_RATIO else "FAIL",
            ],
            [
                "ingest → receipt p50 / p99 (ms)",
                f"{percentile(latencies, 50):.0f} / {percentile(latencies, 99):.0f}" if latencies else None,
                "",
            ],
            [
                "SQL statements per delivered event (goal ≤ 6)",
                round(per_event, 2) if per_event is not None else None,
                f"{statements} statements in {tasks} deliver tasks; "
                + ("PASS" if per_event is not None and per_event <= GOAL_QUERIES else "FAIL"),
            ],
            [
                "all worker statements per event",
                round(all_per_event, 2) if all_per_event is not None else None,
                "deliver tasks + beat ticks + startup",
            ],
            [
                "transactions per event (whole database)",
                round(xacts / delivered, 2) if delivered else None,
                "ingest included",
            ],
            *drain_rows,
        ],
        ["figure", "value", "note"],
        title="Delivery throughput (one HTTP destination, fast local receiver)",
    )
    print(
        "\nStatements are counted inside the Celery worker by a Django execute wrapper, per task "
        "(BEGIN/COMMIT and the connection health check are not statements and are not counted); "
        "transactions come from pg_stat_database.xact_commit of the benchmark database."
    )
    print_json_line(
        {
            "benchmark": "delivery_throughput",
            "events": args.events,
            "accepted": len(accepted),
            "delivered": delivered,
            "duplicates": duplicates,
            "deliveries_per_s": round(rate, 1),
            "baseline_req_per_s": round(baseline_rps, 1),
            "ratio": round(ratio, 3) if ratio else None,
            "goal_ratio": GOAL_RATIO,
            "ingest_req_per_s": round(ingest_rate, 1),
            "latency_ms_p50": round(percentile(latencies, 50), 1) if latencies else None,
            "latency_ms_p99": round(percentile(latencies, 99), 1) if latencies else None,
            "statements_per_event": round(per_event, 2) if per_event is not None else None,
            "worker_statements_per_event": round(all_per_event, 2) if all_per_event is not None else None,
            "transactions_per_event": round(xacts / delivered, 2) if delivered else None,
            "goal_statements": GOAL_QUERIES,
            "engine_drain_per_s": round(drain["rate"], 1) if drain else None,
            "engine_drain_ratio": round(drain_ratio, 3) if drain_ratio else None,
            "engine_drain_statements_per_event": round(drain["statements_per_event"], 2)
            if drain and drain["statements_per_event"] is not None
            else None,
            "celery": f"{args.celery_workers}x {args.celery_pool} concurrency {args.celery_concurrency}",
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
