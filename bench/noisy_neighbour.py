"""Noisy neighbour: a healthy destination's throughput alone, and while another destination of
the same organization times out on every request.

    .venv/bin/python bench/noisy_neighbour.py [--healthy 4000] [--noisy 300] [--noisy-breaker]

Runs the production shape (``bench.stack.Stack``: one Celery worker, threads pool,
concurrency 8) and two uvicorn receivers in their own processes: a fast one for the healthy
destination, and one that sleeps ``--noisy-delay`` seconds (default 5) before answering, for
the noisy destination whose ``timeout_ms`` is ``--noisy-timeout-ms`` (default 1000) — every
attempt to it times out. By default the noisy destination's circuit breaker is **off**, the
worst case: it never stops being attempted (``--noisy-breaker`` turns it on, threshold 5).

Each phase queues its events with the worker stopped (ingest through the real endpoint;
the wake-ups wait in the broker), then starts the worker, so both phases measure the same
thing — the engine draining a backlog — and neither is bounded by ingest:

1. **alone**: ``--healthy`` events for the healthy destination;
2. **disturbed**: ``--noisy`` events for the noisy destination, then ``--healthy`` events
   for the healthy one; the noisy deliveries keep timing out (and retrying) throughout;
3. **alone again**, the noisy destination paused (its deliveries held).

Figure: healthy deliveries/s (first to last receipt) disturbed ÷ the mean of the two
undisturbed runs (goal ≥ 0.8).
The engine keeps a destination whose recent failures were slow to
``HOOKSTREAM_FAILING_DESTINATION_MAX_IN_FLIGHT`` attempts in flight and puts the rest of its
backlog back for about one time-out per cap (``deliveries.engine._over_cap``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import Stack, ingest, machine, print_json_line, print_table, start_receiver  # noqa: E402

GOAL_RATIO = 0.8


def _drain(stack: Stack, healthy_rx, noisy_rx, healthy_url: str, noisy_url: str | None, args) -> dict:
    """Queue the events with the worker stopped, start it, and time the healthy receipts."""
    stack.workers_stop()
    healthy_rx.reset()
    noisy_rx.reset()
    if noisy_url:
        ingest(noisy_url, args.noisy, args.senders)
    accepted = sum(1 for row in ingest(healthy_url, args.healthy, args.senders) if row[3] == 200)
    stack.workers_start()
    started = time.time()
    arrived = healthy_rx.wait_for(accepted, timeout=args.timeout)
    records = healthy_rx.records()
    times = sorted({r["event_id"]: r["at"] for r in reversed(records)}.values())
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    noisy = noisy_rx.records()
    window = (times[0], times[-1]) if times else (started, started)
    noisy_in_window = [r for r in noisy if window[0] <= r["at"] <= window[1]]
    return {
        "accepted": accepted,
        "arrived": arrived,
        "delivered": len(times),
        "rate": rate,
        "seconds": times[-1] - times[0] if len(times) > 1 else None,
        "noisy_attempts": len(noisy_in_window),
        "noisy_concurrency": _max_concurrent(noisy_in_window, args.noisy_timeout_ms / 1000.0),
    }


def _max_concurrent(records: list[dict], hold: float) -> int:
    """Most attempts open at once at the noisy receiver (each is held for the time-out)."""
    edges = sorted([(r["at"], 1) for r in records] + [(r["at"] + hold, -1) for r in records])
    best = current = 0
    for _, step in edges:
        current += step
        best = max(best, current)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--healthy", type=int, default=4000, help="events for the healthy destination per phase (a drain of seconds)"
    )
    parser.add_argument("--noisy", type=int, default=300, help="events for the noisy destination")
    parser.add_argument("--noisy-delay", type=float, default=5.0, help="seconds the noisy receiver sleeps")
    parser.add_argument("--noisy-timeout-ms", type=int, default=1000)
    parser.add_argument("--noisy-breaker", action="store_true", help="keep the noisy destination's breaker on")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=90.0)
    parser.add_argument("--db-name", default="hs_bench_a")
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument("--celery-concurrency", type=int, default=8)
    args = parser.parse_args()

    with (
        Stack(db_name=args.db_name, redis_db=args.redis_db, celery_concurrency=args.celery_concurrency) as stack,
        start_receiver() as healthy_rx,
        start_receiver(delay=args.noisy_delay) as noisy_rx,
    ):
        healthy = stack.http_destination(healthy_rx.url_for(tag="healthy"), name="healthy", timeout_ms=10000)
        noisy = stack.http_destination(
            noisy_rx.url_for(tag="noisy"),
            name="noisy",
            timeout_ms=args.noisy_timeout_ms,
            retry_backoff_type="fixed",
            retry_intervals=[1],
            retry_max_attempts=10,
            circuit_breaker_enabled=args.noisy_breaker,
        )
        _, healthy_url = stack.source_to(healthy["id"], name="healthy source")
        _, noisy_url = stack.source_to(noisy["id"], name="noisy source")
        # alone, disturbed, alone again: the baseline is the mean of the two undisturbed runs,
        # so a machine that gets busier or quieter during the run does not tilt the ratio.
        alone_before = _drain(stack, healthy_rx, noisy_rx, healthy_url, None, args)
        disturbed = _drain(stack, healthy_rx, noisy_rx, healthy_url, noisy_url, args)
        stack.api("PATCH", f"/v1/destinations/{noisy['id']}", {"status": "paused"})
        alone_after = _drain(stack, healthy_rx, noisy_rx, healthy_url, None, args)
        alone = {
            "rate": (alone_before["rate"] + alone_after["rate"]) / 2,
            "delivered": alone_before["delivered"] + alone_after["delivered"],
            "accepted": alone_before["accepted"] + alone_after["accepted"],
        }
        noisy_states = dict(
            stack.sql(
                "SELECT status, count(*) FROM deliveries_delivery WHERE destination_id = %s GROUP BY status",
                (noisy["id"],),
            )
        )
        noisy_timeouts = stack.sql(
            "SELECT count(*) FROM deliveries_deliveryattempt WHERE destination_id = %s AND error LIKE 'timed out%%'",
            (noisy["id"],),
        )[0][0]

    ratio = disturbed["rate"] / alone["rate"] if alone["rate"] else None
    ok = ratio is not None and ratio >= GOAL_RATIO and disturbed["delivered"] == disturbed["accepted"]
    print_table(
        [
            [
                "healthy alone (deliveries/s)",
                round(alone["rate"], 1),
                f"mean of {alone_before['rate']:.1f} before and {alone_after['rate']:.1f} after; "
                f"{alone['delivered']}/{alone['accepted']}",
            ],
            [
                "healthy while noisy times out (deliveries/s)",
                round(disturbed["rate"], 1),
                f"{disturbed['delivered']}/{disturbed['accepted']}",
            ],
            ["ratio (goal ≥ 0.8)", round(ratio, 3) if ratio else None, "PASS" if ok else "FAIL"],
            [
                "noisy attempts during the disturbed drain",
                disturbed["noisy_attempts"],
                f"at most {disturbed['noisy_concurrency']} open at once",
            ],
            ["noisy attempts that timed out (whole run)", noisy_timeouts, f"timeout {args.noisy_timeout_ms} ms"],
            ["noisy deliveries by state at the end", ", ".join(f"{k} {v}" for k, v in sorted(noisy_states.items()))],
            ["noisy circuit breaker", "on" if args.noisy_breaker else "off", "off = worst case"],
        ],
        ["figure", "value", "note"],
        title="Noisy neighbour (one organization, a healthy and a timing-out destination)",
    )
    print_json_line(
        {
            "benchmark": "noisy_neighbour",
            "healthy_events": args.healthy,
            "noisy_events": args.noisy,
            "alone_per_s": round(alone["rate"], 1),
            "alone_before_per_s": round(alone_before["rate"], 1),
            "alone_after_per_s": round(alone_after["rate"], 1),
            "disturbed_per_s": round(disturbed["rate"], 1),
            "ratio": round(ratio, 3) if ratio else None,
            "goal_ratio": GOAL_RATIO,
            "disturbed_delivered": disturbed["delivered"],
            "noisy_attempts_during": disturbed["noisy_attempts"],
            "noisy_max_concurrent": disturbed["noisy_concurrency"],
            "noisy_timeouts": noisy_timeouts,
            "noisy_breaker": args.noisy_breaker,
            "noisy_timeout_ms": args.noisy_timeout_ms,
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
