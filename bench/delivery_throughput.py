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
   to the arrival at the receiver), the ratio to the baseline (goal ≥ 0.5), SQL statements
   per delivered event (goal ≤ 1.5) and broker messages (delivery tasks run) per delivered
   event (goal ≤ 0.1).
4. **Below saturation**: ``--paced-events`` (1,000) more events sent evenly at half the
   delivery rate just measured, for ingest → receipt p50/p99 (goal p99 < 250 ms).
5. **Engine drain**: the delivered deliveries made due again and drained by the worker alone
   (one wake-up for the destination), with ``--celery-workers`` processes and then with two
   (``--drain-workers``), for the same figures without ingest.

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
    ingest_paced,
    machine,
    percentile,
    print_json_line,
    print_table,
    start_receiver,
)

GOAL_RATIO = 0.5
GOAL_QUERIES = 1.5
GOAL_MESSAGES = 0.1
SKIP = {"connections"}
# The delivery tasks: wake-ups of a destination, and the one-delivery form.
DELIVER_TASKS = ("deliveries.deliver_destination", "deliveries.deliver")


def deliver_counts(before: dict[str, int], after: dict[str, int]) -> tuple[int, int]:
    """Statements run inside delivery tasks, and delivery tasks run (= broker messages taken)."""
    statements = sum(after.get(t, 0) - before.get(t, 0) for t in DELIVER_TASKS)
    tasks = sum(after.get(f"tasks:{t}", 0) - before.get(f"tasks:{t}", 0) for t in DELIVER_TASKS)
    return statements, tasks


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


def delivered_rate(records: list[dict], accepted: dict, started: float) -> float:
    """Distinct accepted events received per second, from the first ingest to the last receipt."""
    times = [r["at"] for r in records if r["event_id"] in accepted]
    return len({r["event_id"] for r in records if r["event_id"] in accepted}) / (max(times) - started) if times else 0.0


def paced_latency(stack: Stack, receiver, ingest_url: str, args, rate: float) -> dict:
    """Ingest → receipt latency with events sent evenly at ``rate`` (half the measured maximum):
    the latency a user sees below saturation, not the queueing of a burst."""
    receiver.reset()
    sent = ingest_paced(ingest_url, args.paced_events, rate, args.senders, first=10_000_000)
    accepted = {row[0]: row for row in sent if row[3] == 200 and row[0]}
    receiver.wait_for(len(accepted), timeout=args.timeout)
    first: dict[str, float] = {}
    for record in receiver.records():
        if record["event_id"] in accepted and record["event_id"] not in first:
            first[record["event_id"]] = record["at"]
    latencies = [(first[e] - accepted[e][1]) * 1000 for e in first]
    return {
        "rate": rate,
        "events": len(accepted),
        "delivered": len(first),
        "p50": percentile(latencies, 50) if latencies else None,
        "p99": percentile(latencies, 99) if latencies else None,
    }


def engine_drain(stack: Stack, receiver, destination_id: str, timeout: float, workers: int) -> dict:
    """The engine alone: the delivered deliveries made due again and drained by fresh workers.

    With the workers stopped, every succeeded delivery of the destination is put back to
    ``pending`` in SQL (what a manual retry does) and one wake-up of the destination is sent
    to the broker; then ``workers`` worker processes start and drain them. Deliveries/s from
    the first to the last receipt, so neither ingest nor the workers' start-up is in it.
    """
    stack.workers_stop()
    stack.celery_workers = workers
    ids = [
        row[0]
        for row in stack.sql(
            "UPDATE deliveries_delivery SET status = 'pending', next_attempt_at = now(), woken_at = now(), "
            "completed_at = NULL, cycle_start_attempt = attempt_count, trigger_type = 'manual' "
            "WHERE destination_id = %s AND status = 'succeeded' RETURNING id",
            (destination_id,),
        )
    ]
    stack.wake_destinations([destination_id])
    receiver.reset()
    queries_before = stack.worker_queries()
    stack.workers_start()
    arrived = receiver.wait_for(len(ids), timeout=timeout)
    time.sleep(0.5)
    queries_after = stack.worker_queries()
    times = sorted({r["event_id"]: r["at"] for r in reversed(receiver.records())}.values())
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    statements, tasks = deliver_counts(queries_before, queries_after)
    return {
        "workers": workers,
        "deliveries": len(ids),
        "arrived": arrived,
        "delivered": len(times),
        "rate": rate,
        "statements_per_event": statements / len(times) if times else None,
        "messages_per_event": tasks / len(times) if times else None,
    }


def _round(value, digits: int):
    return round(value, digits) if value is not None else None


def _fmt(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


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
    parser.add_argument("--skip-drain", action="store_true", help="skip the engine-only drain phases")
    parser.add_argument(
        "--paced-events",
        type=int,
        default=1000,
        help="events sent evenly at half the measured maximum rate, for the latency below saturation (0: skip)",
    )
    parser.add_argument(
        "--drain-workers", type=int, default=2, help="worker processes of the second drain (0: skip it; default 2)"
    )
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
        paced = None
        if args.paced_events:
            half = delivered_rate(records, accepted, started) / 2
            paced = paced_latency(stack, receiver, ingest_url, args, rate=half)
        drains = []
        if not args.skip_drain:
            drains.append(engine_drain(stack, receiver, destination["id"], args.timeout, args.celery_workers))
            if args.drain_workers and args.drain_workers != args.celery_workers:
                drains.append(engine_drain(stack, receiver, destination["id"], args.timeout, args.drain_workers))

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

    statements, tasks = deliver_counts(queries_before, queries_after)
    all_statements = sum(v for k, v in queries_after.items() if k not in SKIP and not k.startswith("tasks:")) - sum(
        v for k, v in queries_before.items() if k not in SKIP and not k.startswith("tasks:")
    )
    per_event = statements / delivered if delivered else None
    messages_per_event = tasks / delivered if delivered else None
    all_per_event = all_statements / delivered if delivered else None
    xacts = db_after.get("xact_commit", 0) - db_before.get("xact_commit", 0)
    ratio = rate / baseline_rps if baseline_rps else None

    drain_rows = []
    for drain in drains:
        drain["ratio"] = drain["rate"] / baseline_rps if baseline_rps else None
        label = f"{drain['workers']} worker process{'es' if drain['workers'] > 1 else ''}"
        drain_rows += [
            [
                f"engine drain, {label} (deliveries/s)",
                round(drain["rate"], 1),
                f"{drain['delivered']} of {drain['deliveries']} re-driven, worker only, first → last receipt",
            ],
            [
                f"engine drain ratio, {label} (goal ≥ 0.5)",
                round(drain["ratio"], 3) if drain["ratio"] else None,
                "PASS" if drain["ratio"] and drain["ratio"] >= GOAL_RATIO else "FAIL",
            ],
            [
                f"engine drain statements / broker messages per delivery, {label}",
                f"{_fmt(drain['statements_per_event'])} / {_fmt(drain['messages_per_event'], 3)}",
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
                "SQL statements per delivered event (goal ≤ 1.5)",
                round(per_event, 2) if per_event is not None else None,
                f"{statements} statements in {tasks} delivery tasks; "
                + ("PASS" if per_event is not None and per_event <= GOAL_QUERIES else "FAIL"),
            ],
            [
                "broker messages per delivered event (goal ≤ 0.1)",
                round(messages_per_event, 3) if messages_per_event is not None else None,
                "delivery tasks run; "
                + ("PASS" if messages_per_event is not None and messages_per_event <= GOAL_MESSAGES else "FAIL"),
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
            *(
                [
                    [
                        f"ingest → receipt p50 / p99 (ms) at {paced['rate']:.1f} events/s, half the maximum"
                        " (goal p99 < 250)",
                        f"{_fmt(paced['p50'], 0)} / {_fmt(paced['p99'], 0)}",
                        f"{paced['delivered']} of {paced['events']} delivered; "
                        + ("PASS" if paced["p99"] is not None and paced["p99"] < 250 else "FAIL"),
                    ]
                ]
                if paced
                else []
            ),
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
            "messages_per_event": round(messages_per_event, 3) if messages_per_event is not None else None,
            "goal_messages": GOAL_MESSAGES,
            "paced": {
                "per_s": round(paced["rate"], 1),
                "delivered": paced["delivered"],
                "latency_ms_p50": _round(paced["p50"], 1),
                "latency_ms_p99": _round(paced["p99"], 1),
            }
            if paced
            else None,
            "engine_drain": [
                {
                    "workers": d["workers"],
                    "per_s": round(d["rate"], 1),
                    "ratio": round(d["ratio"], 3) if d["ratio"] else None,
                    "statements_per_event": _round(d["statements_per_event"], 2),
                    "messages_per_event": _round(d["messages_per_event"], 3),
                }
                for d in drains
            ],
            "celery": f"{args.celery_workers}x {args.celery_pool} concurrency {args.celery_concurrency}",
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
