"""Memory soak: the Celery worker's resident memory over a long run of deliveries.

    .venv/bin/python bench/memory_soak.py [--deliveries 100000] [--chunk 2000]

Runs the production shape (``bench.stack.Stack``: PostgreSQL, Redis, gunicorn, one Celery
worker with the Procfile's flags, beat) and a uvicorn receiver in its own process. Events go
through the real ingest endpoint in chunks of ``--chunk`` (``--senders`` keep-alive client
processes) while the worker runs; after each chunk has been delivered (the receiver has
counted every accepted event so far), the resident set size (``VmRSS`` from
``/proc/<pid>/status``) of the worker's whole process tree is sampled, and of gunicorn's and
beat's for comparison. Sampling when the queue is empty compares like with like.

Figures: worker RSS after warm-up (the first sample at ``--warmup`` of the deliveries, 10 %
by default), at the end, the growth between them (goal < 10 %), the peak, and the slope of a
least-squares line through the samples after warm-up (MB per 10,000 deliveries). Each
sample is appended to ``--samples-file`` (JSON lines) as it is taken, so an interrupted soak
keeps its curve. The run takes about ``deliveries / end-to-end rate``: on a 2-core machine
60–100 deliveries/s, i.e. 17–27 minutes for 100,000 (5.5 minutes for 20,000 measured).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import (  # noqa: E402
    ROOT,
    Stack,
    ingest,
    machine,
    print_json_line,
    print_table,
    start_receiver,
    uptime,
)

GOAL_GROWTH_PCT = 10.0


def log(message: str) -> None:
    print(f"[soak] {message}", file=sys.stderr, flush=True)


def _children() -> dict[int, list[int]]:
    """Parent pid → child pids, for every process visible in ``/proc``."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # exited meanwhile
        # "pid (comm) state ppid ..." — comm may contain spaces and parentheses.
        ppid = int(text[text.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(stat.parent.name))
    return children


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mb(pid: int, children: dict[int, list[int]] | None = None) -> tuple[float, int]:
    """Resident memory of ``pid`` and all its descendants (MB), and how many processes that is."""
    children = _children() if children is None else children
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo.extend(children.get(current, []))
    return sum(_rss_kb(p) for p in pids) / 1024, len(pids)


def sample(stack: Stack, delivered: int, started: float) -> dict:
    children = _children()
    row: dict = {"delivered": delivered, "seconds": round(time.monotonic() - started, 1)}
    for name, process in stack.processes:
        rss, count = tree_rss_mb(process.pid, children)
        key = "worker" if name.startswith("worker") else name
        row[f"{key}_mb"] = round(row.get(f"{key}_mb", 0.0) + rss, 1)
        row[f"{key}_processes"] = row.get(f"{key}_processes", 0) + count
    return row


def slope_per_10k(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (deliveries, MB), in MB per 10,000 deliveries."""
    if len(points) < 2:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if not var:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var * 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=2000, help="events per ingest chunk; one sample per chunk")
    parser.add_argument("--senders", type=int, default=4, help="ingest client processes (default 4)")
    parser.add_argument("--warmup", type=float, default=0.10, help="fraction of the deliveries counted as warm-up")
    parser.add_argument("--samples-file", type=Path, default=None, help="JSON lines of samples (bench/results/…)")
    parser.add_argument("--db-name", default="hs_bench_a")
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument("--celery-concurrency", type=int, default=8)
    args = parser.parse_args()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    samples_file = args.samples_file or ROOT / "bench" / "results" / f"memory_soak-{stamp}.jsonl"
    samples_file.parent.mkdir(parents=True, exist_ok=True)

    load_before = uptime()
    log(f"load before: {load_before}; samples → {samples_file}")
    samples: list[dict] = []
    accepted_total = sent_total = 0
    with (
        Stack(db_name=args.db_name, redis_db=args.redis_db, celery_concurrency=args.celery_concurrency) as stack,
        start_receiver() as receiver,
    ):
        destination = stack.http_destination(receiver.url_for(tag="soak"), name="soak receiver", timeout_ms=10000)
        _, ingest_url = stack.source_to(destination["id"], name="soak source")
        started = time.monotonic()
        samples.append(sample(stack, 0, started))
        while sent_total < args.deliveries:
            size = min(args.chunk, args.deliveries - sent_total)
            sent = ingest(ingest_url, size, args.senders)
            sent_total += size
            accepted_total += sum(1 for row in sent if row[3] == 200)
            arrived = receiver.wait_for(accepted_total, timeout=120 + size / 5)
            if arrived < accepted_total:
                raise RuntimeError(f"only {arrived} of {accepted_total} delivered; see {stack.log_dir}")
            row = sample(stack, arrived, started)
            samples.append(row)
            with samples_file.open("a") as out:
                out.write(json.dumps(row) + "\n")
            rate = arrived / (time.monotonic() - started)
            log(
                f"{arrived:,} delivered, worker {row['worker_mb']:.1f} MB, {rate:.0f}/s, "
                f"~{(args.deliveries - arrived) / rate / 60 if rate else 0:.1f} min left"
            )
        elapsed = time.monotonic() - started
        time.sleep(1.0)
        succeeded = stack.sql(
            "SELECT count(*) FROM deliveries_delivery WHERE destination_id = %s AND status = 'succeeded'",
            (destination["id"],),
        )[0][0]
        arrived_final = receiver.count()
    load_after = uptime()

    warm_at = args.deliveries * args.warmup
    warm = next(s for s in samples if s["delivered"] >= warm_at)
    end = samples[-1]
    growth = (end["worker_mb"] - warm["worker_mb"]) / warm["worker_mb"] * 100 if warm["worker_mb"] else None
    peak = max(s["worker_mb"] for s in samples)
    after_warm = [(s["delivered"], s["worker_mb"]) for s in samples if s["delivered"] >= warm["delivered"]]
    slope = slope_per_10k(after_warm)
    rate = accepted_total / elapsed if elapsed else 0.0

    step = max(1, len(samples) // 10)
    shown = [s for i, s in enumerate(samples) if i % step == 0 or s is warm or s is end]
    print_table(
        [
            [
                f"{s['delivered']:,}",
                f"{s['seconds']:.0f}",
                s["worker_mb"],
                s.get("worker_processes"),
                s.get("web_mb"),
                s.get("beat_mb"),
                "warm-up" if s is warm else ("end" if s is end else ""),
            ]
            for s in shown
        ],
        ["delivered", "seconds", "worker MB", "procs", "gunicorn MB", "beat MB", ""],
        title=f"Worker RSS over {args.deliveries:,} deliveries (chunks of {args.chunk:,}, sampled after each)",
    )
    print_table(
        [
            [
                "events accepted / delivered",
                f"{accepted_total:,} / {succeeded:,}",
                f"{arrived_final:,} requests arrived",
            ],
            ["end-to-end rate (deliveries/s)", round(rate, 1), f"{elapsed / 60:.1f} min in all"],
            ["worker RSS after warm-up (MB)", warm["worker_mb"], f"at {warm['delivered']:,} deliveries"],
            ["worker RSS at the end (MB)", end["worker_mb"], f"at {end['delivered']:,} deliveries"],
            [
                "growth after warm-up (goal < 10 %)",
                round(growth, 2) if growth is not None else None,
                "PASS" if growth is not None and growth < GOAL_GROWTH_PCT else "FAIL",
            ],
            ["peak worker RSS (MB)", peak, ""],
            ["slope after warm-up (MB per 10k deliveries)", round(slope, 3) if slope is not None else None, ""],
        ],
        ["figure", "value", "note"],
        title="Memory soak",
    )
    print(f"load before: {load_before}\nload after:  {load_after}\nsamples: {samples_file}")
    print_json_line(
        {
            "benchmark": "memory_soak",
            "deliveries": args.deliveries,
            "accepted": accepted_total,
            "succeeded": succeeded,
            "deliveries_per_s": round(rate, 1),
            "minutes": round(elapsed / 60, 1),
            "worker_rss_mb_warm": warm["worker_mb"],
            "worker_rss_mb_warm_at": warm["delivered"],
            "worker_rss_mb_end": end["worker_mb"],
            "worker_rss_mb_peak": peak,
            "growth_pct": round(growth, 2) if growth is not None else None,
            "goal_growth_pct": GOAL_GROWTH_PCT,
            "slope_mb_per_10k": round(slope, 3) if slope is not None else None,
            "web_rss_mb_end": end.get("web_mb"),
            "samples": [[s["delivered"], s["worker_mb"]] for s in samples],
            "celery": f"1x threads concurrency {args.celery_concurrency} prefetch 1",
            "load_before": load_before,
            "load_after": load_after,
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
