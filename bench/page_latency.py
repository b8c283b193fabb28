"""List page and metrics latency at 10k and at 1M rows: events, delivery attempts,
destinations, and the metrics over time.

    .venv/bin/python bench/page_latency.py                  # 10k, then 1M rows: < 3 minutes
    .venv/bin/python bench/page_latency.py --rows 200000    # a quicker run
    .venv/bin/python bench/page_latency.py --explain        # also print every query plan

On the production-shaped stack (``bench.stack.Stack``: PostgreSQL, Redis, gunicorn 2 x 4,
a Celery worker and beat), one organization gets 5 sources and 50 HTTP destinations through
the API, then ``--base-rows`` events, each with one delivery and one delivery attempt, seeded
with bulk SQL (``INSERT … SELECT generate_series``) over the last 7 days. Every 20th event's
delivery is dead (its attempt failed, a dead letter row waits); the others succeeded, so
beat and the worker have nothing to do. After each seeding the metric rollups are rebuilt by
the rollup job itself (``monitoring.rollups.rollups_advance``, from the oldest seeded hour up
to now), as if beat had rolled the rows up while they arrived. Each scenario below is measured (one client,
keep-alive, ``--samples`` requests after a warm-up) at that size; then the tables grow to
``--rows`` with older rows, are ``VACUUM ANALYZE``d, and every scenario is measured again.

A scenario is a first page (default page size, 20) or a deep page: the cursor of the row at
90 % of the table's depth (the cursor is the list's timestamp and id of the last row seen:
``received_at`` for events, ``created_at`` for attempts). A metrics scenario is a series
over the hour (or day) before the newest seeded row, the same window at both sizes, or the
overview of today. The
figure is p50(large) / p50(base) per scenario: the baseline is the same request on the same
stack in the same run. Goal: <= 1.5 for every scenario.

At each size every scenario's SQL (captured from the real view, in process) is run again
under ``EXPLAIN (ANALYZE, BUFFERS)`` on the application's own connection settings: the table
shows the database's execution time at both sizes and the indexes the large plan uses;
``--explain`` prints the whole large plans. Requests go round-robin over the scenarios, so
load from elsewhere on the machine spreads over all of them alike.

The last line of the output is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.stack import Stack, machine, percentile, print_json_line, print_table, uptime  # noqa: E402

GOAL_RATIO = 1.5
SOURCES = 5
DESTINATIONS = 50
SPAN_SECONDS = 7 * 24 * 3600  # seeded rows are spread over the last week (retention is 30 days)
DEAD_EVERY = 20

# One statement per table. Row k = 0 is the newest; %(lo)s <= k < %(hi)s are inserted, so a
# second call with a higher range adds older rows behind the first ones. Ids are md5 of the
# row number: deterministic, unique, and shaped like real ids (prefix + 32 hex characters).
SEED_SQL = [
    """
    INSERT INTO intake_event (id, organization_id, source_id, topic_id, method, headers, query, content_type,
                              body, payload, body_size, source_ip, idempotency_key, received_at, created_at)
    SELECT 'evt_' || md5('e' || k), %(org)s, (%(sources)s::text[])[1 + k %% {sources}], NULL, 'POST',
           '{{"Content-Type": "application/json", "User-Agent": "bench"}}'::jsonb, '{{}}'::jsonb,
           'application/json', convert_to('{{"type": "order.created", "n": ' || k || '}}', 'UTF8'),
           jsonb_build_object('type', 'order.created', 'n', k), 40, '127.0.0.1', NULL, at, at
    FROM (SELECT k, now() - k * %(spacing)s * interval '1 second' AS at
          FROM generate_series(%(lo)s, %(hi)s - 1) AS k) AS rows
    """,
    """
    INSERT INTO deliveries_delivery (id, organization_id, event_id, destination_id, connection_id, subscription_id,
                                     status, trigger_type, transformed_payload, attempt_count, next_attempt_at,
                                     lease_expires_at, woken_at, cycle_start_attempt, replay_job_id, last_error,
                                     created_at, updated_at, completed_at)
    SELECT 'dlv_' || md5('d' || k), %(org)s, 'evt_' || md5('e' || k),
           (%(destinations)s::text[])[1 + k %% {destinations}], NULL, NULL,
           CASE WHEN k %% {dead_every} = 0 THEN 'dead' ELSE 'succeeded' END, 'initial', NULL, 1, at, NULL, NULL, 0,
           NULL, CASE WHEN k %% {dead_every} = 0 THEN 'HTTP 500' ELSE '' END, at, at, at
    FROM (SELECT k, now() - k * %(spacing)s * interval '1 second' AS at
          FROM generate_series(%(lo)s, %(hi)s - 1) AS k) AS rows
    """,
    """
    INSERT INTO deliveries_deliveryattempt (id, organization_id, delivery_id, event_id, destination_id, connection_id,
                                            attempt_number, status, request_url, request_method, request_headers,
                                            request_body_size, response_status, response_headers, response_body,
                                            duration_ms, error, next_retry_at, is_dlq, dlq_at, trigger_type,
                                            created_at)
    SELECT 'da_' || md5('a' || k), %(org)s, 'dlv_' || md5('d' || k), 'evt_' || md5('e' || k),
           (%(destinations)s::text[])[1 + k %% {destinations}], NULL, 1,
           CASE WHEN dead THEN 'failed' ELSE 'success' END, 'https://bench.example.com/hook', 'POST',
           '{{"Content-Type": "application/json"}}'::jsonb, 40, CASE WHEN dead THEN 500 ELSE 200 END,
           '{{}}'::jsonb, '{{"ok": true}}', 12, CASE WHEN dead THEN 'HTTP 500' ELSE '' END, NULL, dead,
           CASE WHEN dead THEN at END, 'initial', at
    FROM (SELECT k, k %% {dead_every} = 0 AS dead, now() - k * %(spacing)s * interval '1 second' AS at
          FROM generate_series(%(lo)s, %(hi)s - 1) AS k) AS rows
    """,
    """
    INSERT INTO deliveries_deadletter (id, organization_id, delivery_id, destination_id, event_id, reason,
                                       last_error, created_at)
    SELECT 'dlq_' || md5('l' || k), %(org)s, 'dlv_' || md5('d' || k),
           (%(destinations)s::text[])[1 + k %% {destinations}], 'evt_' || md5('e' || k), 'retries_exhausted',
           'HTTP 500', at
    FROM (SELECT k, now() - k * %(spacing)s * interval '1 second' AS at
          FROM generate_series(%(lo)s, %(hi)s - 1) AS k WHERE k %% {dead_every} = 0) AS rows
    """,
]
SEEDED_TABLES = ("intake_event", "deliveries_delivery", "deliveries_deliveryattempt", "deliveries_deadletter")


def encode_cursor(created_at, pk: str) -> str:
    """The API's cursor for a row (``hookstream.api.pagination.encode_cursor``: opaque to
    clients, rebuilt here so a deep page can be asked for without paging down to it)."""
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{pk}".encode()).decode().rstrip("=")


def seed(stack: Stack, *, lo: int, hi: int, rows: int, sources: list[str], destinations: list[str]) -> float:
    """Insert rows ``lo`` to ``hi - 1`` of each seeded table, then VACUUM and ANALYZE them (one
    connection per table, in parallel: the work is mostly index maintenance and WAL)."""
    import psycopg

    began = time.monotonic()
    params = {
        "org": stack.org_id,
        "sources": sources,
        "destinations": destinations,
        "lo": lo,
        "hi": hi,
        "spacing": SPAN_SECONDS / rows,
    }

    def fill(statement: str) -> None:
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            # A throw-away database: no need to wait for WAL flushes while seeding, nor to check
            # foreign keys row by row (the rows reference each other by construction).
            conn.execute("SET synchronous_commit TO OFF")
            conn.execute("SET session_replication_role TO replica")
            conn.execute("SET maintenance_work_mem TO '256MB'")
            sql = statement.format(sources=len(sources), destinations=len(destinations), dead_every=DEAD_EVERY)
            conn.execute(sql, params)

    def vacuum(table: str) -> None:
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            conn.execute(f"VACUUM {table}")

    with ThreadPoolExecutor(max_workers=len(SEED_SQL)) as pool:
        for done in [pool.submit(fill, sql) for sql in SEED_SQL]:
            done.result()
        # Only once every insert has committed, and ANALYZE only after every VACUUM: a running
        # transaction or ANALYZE's snapshot would keep VACUUM from marking the new pages
        # all-visible (no index-only scans, as after a bulk load autovacuum has not reached).
        for done in [pool.submit(vacuum, table) for table in SEEDED_TABLES]:
            done.result()
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(f"ANALYZE {', '.join(SEEDED_TABLES)}")
    return time.monotonic() - began


def _django(stack: Stack) -> None:
    """Django in this process, on the stack's database (for the rollup job and EXPLAIN)."""
    os.environ.update(stack.env)
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookstream.settings")
    import django

    django.setup()


class _RolledBack(Exception):
    pass


def roll_up(stack: Stack) -> dict:
    """Rebuild the metric rollups from the oldest seeded hour with the rollup job itself, one
    step (at most ``MAX_STEP``) at a time, as beat would have while the rows arrived. Beat runs
    meanwhile; the job's lock on its state row keeps the two from counting a row twice.
    Returns the seconds spent and the plan of the attempts scan of the last (steady-state,
    about a minute) step and of a full step."""
    _django(stack)
    from datetime import timedelta

    from django.db import connection, reset_queries, transaction
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from monitoring import rollups
    from monitoring.models import DeliveryRollup, RollupState, VolumeRollup

    began = time.monotonic()
    oldest = stack.sql("SELECT min(created_at) FROM deliveries_deliveryattempt")[0][0]
    start = oldest.replace(minute=0, second=0, microsecond=0)
    with transaction.atomic():
        state, _ = RollupState.objects.select_for_update().get_or_create(
            name=rollups.STATE, defaults={"rolled_until": start}
        )
        DeliveryRollup.objects.all().delete()
        VolumeRollup.objects.all().delete()
        state.rolled_until = start
        state.save()
    scans = []
    target = timezone.now() - rollups.ROLL_LAG
    reached = start
    while reached < target:
        reset_queries()  # the capture reads a log that stops growing at 9,000 statements
        with CaptureQueriesContext(connection) as captured:
            reached = rollups.rollups_advance()
        scans += [q["sql"] for q in captured.captured_queries if 'FROM "deliveries_deliveryattempt"' in q["sql"]]
    seconds = time.monotonic() - began
    # A steady-state run, what beat reads every minute: its statements, the run rolled back.
    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        try:
            with transaction.atomic():
                rollups.rollups_advance(now=timezone.now() + timedelta(seconds=60))
                raise _RolledBack
        except _RolledBack:
            pass
    minute = [q["sql"] for q in captured.captured_queries if 'FROM "deliveries_deliveryattempt"' in q["sql"]]
    plans = {}
    for label, sql in (("full step", scans[0] if scans else None), ("one minute", minute[0] if minute else None)):
        if sql is None:
            continue
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            text = "\n".join(row[0] for row in cursor.fetchall())
        execution = re.search(r"Execution Time: ([\d.]+) ms", text)
        plans[label] = {
            "indexes": sorted(set(re.findall(r"Index (?:Only )?Scan (?:Backward )?(?:using|on) (\w+)", text))),
            "seq_scans": sorted(set(re.findall(r"Seq Scan on (\w+)", text))),
            "execution_ms": float(execution.group(1)) if execution else None,
            "plan": text,
        }
    return {"seconds": seconds, "steps": len(scans), "plans": plans}


def deep_cursor(stack: Stack, table: str, field: str, depth: int) -> str:
    """The cursor a client holds after paging down to row ``depth`` (the list's order)."""
    row = stack.sql(
        f"SELECT {field}, id FROM {table} WHERE organization_id = %s ORDER BY {field} DESC, id DESC OFFSET %s LIMIT 1",
        (stack.org_id, depth),
    )[0]
    return encode_cursor(row[0], row[1])


def scenarios(stack: Stack, *, count: int, sources: list[str], destinations: list[str]) -> list[tuple[str, str]]:
    """(name, path) of every measured request at the current size."""
    depth = int(count * 0.9)
    events_deep = deep_cursor(stack, "intake_event", "received_at", depth)
    attempts_deep = deep_cursor(stack, "deliveries_deliveryattempt", "created_at", depth)
    # A one-hour window in the middle of the week (after/before filter on received_at).
    middle = stack.sql(
        "SELECT received_at FROM intake_event WHERE organization_id = %s "
        "ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
        (stack.org_id, count // 2),
    )[0][0]
    after = (middle - _hours(1)).isoformat().replace("+00:00", "Z")
    before = middle.isoformat().replace("+00:00", "Z")
    source, destination = sources[0], destinations[0]
    # The hour (and day) before the newest seeded attempt: the same window at both sizes (the
    # large size adds older rows), so the same rollup rows answer it.
    newest = stack.sql(
        "SELECT max(created_at) FROM deliveries_deliveryattempt WHERE organization_id = %s", (stack.org_id,)
    )[0][0]
    hour = f"after={_iso(newest - _hours(1))}&before={_iso(newest)}"
    day = f"after={_iso(newest - _hours(24))}&before={_iso(newest)}"
    return [
        ("events: first page", "/v1/events"),
        ("events: deep page", f"/v1/events?cursor={events_deep}"),
        ("events: source_id, first", f"/v1/events?source_id={source}"),
        ("events: source_id, deep", f"/v1/events?source_id={source}&cursor={events_deep}"),
        ("events: status=failed, first", "/v1/events?status=failed"),
        ("events: status=failed, deep", f"/v1/events?status=failed&cursor={events_deep}"),
        # No event is pending (every seeded delivery is finished): the filter matches nothing.
        ("events: status=pending (none)", "/v1/events?status=pending"),
        ("events: 1-hour window, first", f"/v1/events?after={after}&before={before}"),
        # search: an event id, a body substring matching one event (the trigram index), one
        # matching every event (the list order index), and one matching none.
        ("events: search event id", f"/v1/events?search=evt_{hashlib.md5(b'e4242').hexdigest()}"),
        ("events: search body, one match", "/v1/events?search=%3A%204242%7D"),
        ("events: search body, every event", "/v1/events?search=order.created"),
        ("events: search body, no match", "/v1/events?search=nothing-here"),
        ("attempts: first page", "/v1/delivery-attempts"),
        ("attempts: deep page", f"/v1/delivery-attempts?cursor={attempts_deep}"),
        ("attempts: destination_id, first", f"/v1/delivery-attempts?destination_id={destination}"),
        (
            "attempts: destination_id, deep",
            f"/v1/delivery-attempts?destination_id={destination}&cursor={attempts_deep}",
        ),
        ("attempts: status=failed, first", "/v1/delivery-attempts?status=failed"),
        ("attempts: is_dlq=true, deep", f"/v1/delivery-attempts?is_dlq=true&cursor={attempts_deep}"),
        ("destinations: first page", "/v1/destinations"),
        ("metrics: overview (today)", "/v1/metrics/overview"),
        ("metrics: volume, 1 h by hour", f"/v1/metrics/volume?{hour}"),
        ("metrics: deliveries, 1 h by hour", f"/v1/metrics/deliveries?{hour}"),
        ("metrics: latency, 1 h by hour", f"/v1/metrics/latency?{hour}"),
        ("metrics: latency, 24 h by day", f"/v1/metrics/latency?{day}&granularity=day"),
        (
            "metrics: deliveries, 24 h by day, destination_id",
            f"/v1/metrics/deliveries?{day}&granularity=day&destination_id={destination}",
        ),
        ("metrics: volume, 24 h by day, source_id", f"/v1/metrics/volume?{day}&granularity=day&source_id={source}"),
    ]


def _iso(moment) -> str:
    from urllib.parse import quote

    return quote(moment.isoformat())


def _hours(n: int):
    from datetime import timedelta

    return timedelta(hours=n)


def measure_all(stack: Stack, paths: list[tuple[str, str]], *, samples: int, warmup: int = 3) -> dict[str, dict]:
    """p50/p99 of every path over one keep-alive connection. The requests go round-robin over
    the paths, so a burst of load from elsewhere on the machine hits every scenario alike."""
    parts = urlsplit(stack.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    headers = {"X-API-Key": stack.api_key}
    timings: dict[str, list[float]] = {name: [] for name, _ in paths}
    rows: dict[str, int] = {}
    try:
        for n in range(warmup + samples):
            for name, path in paths:
                began = time.perf_counter()
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                elapsed = time.perf_counter() - began
                if response.status != 200:
                    raise RuntimeError(f"GET {path} answered {response.status}: {body[:300]!r}")
                if n >= warmup:
                    timings[name].append(elapsed * 1000)
                if name not in rows:
                    lists = [v for v in json.loads(body).values() if isinstance(v, list)]
                    rows[name] = len(lists[0]) if lists else 1  # the overview is one object
    finally:
        conn.close()
    return {
        name: {"p50_ms": percentile(timings[name], 50), "p99_ms": percentile(timings[name], 99), "rows": rows[name]}
        for name, _ in paths
    }


def explain_all(stack: Stack, paths: list[tuple[str, str]]) -> dict[str, dict]:
    """Run each request in process, capture its SQL and EXPLAIN ANALYZE the list query."""
    _django(stack)
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_X_API_KEY=stack.api_key)
    plans = {}
    for name, path in paths:
        reset_queries()  # the capture reads a log that stops growing at 9,000 statements
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path).status_code == 200, path
        selects = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT")]
        if name.startswith("metrics"):
            # Every read of the data tables and the rollups (times summed).
            statements = [sql for sql in selects if re.search(r'FROM "(deliveries|monitoring|intake)_', sql)]
        else:
            # The page query: the SELECT with the LIMIT (the key lookup and its UPDATE are not).
            statements = [max((sql for sql in selects if "LIMIT" in sql), key=len)]
        texts = []
        # On the application's own connection, so with its session settings (no JIT).
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                texts.append("\n".join(row[0] for row in cursor.fetchall()))
        text = "\n".join(texts)
        executions = [float(ms) for ms in re.findall(r"Execution Time: ([\d.]+) ms", text)]
        plans[name] = {
            "indexes": sorted(set(re.findall(r"Index (?:Only )?Scan (?:Backward )?(?:using|on) (\w+)", text))),
            "seq_scans": sorted(set(re.findall(r"Seq Scan on (\w+)", text))),
            "execution_ms": round(sum(executions), 3) if executions else None,
            "sql": "\n".join(statements),
            "plan": text.splitlines(),
        }
    return plans


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="the large size (events, deliveries, attempts)")
    parser.add_argument("--base-rows", type=int, default=10_000, help="the baseline size")
    parser.add_argument("--samples", type=int, default=40, help="measured requests per scenario and size")
    parser.add_argument("--db-name", default="hs_bench_b", help="PostgreSQL database (dropped and re-created)")
    parser.add_argument("--redis-db", type=int, default=14, help="Redis cache db; the broker uses the next one")
    parser.add_argument("--explain", action="store_true", help="print every query plan at the large size")
    args = parser.parse_args(argv)
    if not 0 < args.base_rows < args.rows:
        parser.error("--base-rows must be positive and smaller than --rows")

    print(f"uptime before: {uptime()}", file=sys.stderr)
    results: dict[str, dict] = {}
    plans: dict[str, dict] = {}
    seconds: dict[str, float] = {}
    rollup_plans: dict[str, dict] = {}
    # The limiter runs as in production, with a limit no single client reaches.
    extra_env = {"HOOKSTREAM_RATE_LIMIT_PER_MINUTE": "1000000000", "LOG_LEVEL": "WARNING"}
    # The worker logs at the same level, so it is asked whether it is up (it prints no "ready").
    with Stack(db_name=args.db_name, redis_db=args.redis_db, extra_env=extra_env, worker_loglevel="WARNING") as stack:
        sources = [stack.api("POST", "/v1/sources", {"name": f"bench source {n}"})["id"] for n in range(SOURCES)]
        destinations = [
            stack.http_destination(f"https://bench.example.com/hook/{n}", name=f"bench destination {n}")["id"]
            for n in range(DESTINATIONS)
        ]
        seeded = {"sources": sources, "destinations": destinations}
        for label, lo, hi in (("base", 0, args.base_rows), ("large", args.base_rows, args.rows)):
            seconds[f"seed_{label}"] = seed(stack, lo=lo, hi=hi, rows=args.rows, **seeded)
            print(f"[seed] {hi:,} rows per table ({seconds[f'seed_{label}']:.1f} s)", file=sys.stderr)
            rolled = roll_up(stack)
            seconds[f"rollup_{label}"] = rolled["seconds"]
            rollup_plans[label] = {
                k: {f: v[f] for f in ("indexes", "seq_scans", "execution_ms")} for k, v in rolled["plans"].items()
            }
            print(
                f"[rollup] {rolled['steps']} steps ({rolled['seconds']:.1f} s): {rollup_plans[label]}", file=sys.stderr
            )
            if args.explain:
                for plan_label, plan in rolled["plans"].items():
                    print(f"\n--- rollup job, {label}, {plan_label}\n{plan['plan']}", file=sys.stderr)
            paths = scenarios(stack, count=hi, **seeded)
            for name, figures in measure_all(stack, paths, samples=args.samples).items():
                results.setdefault(name, {})[label] = figures
            plans[label] = explain_all(stack, paths)

    table, figures, worst = [], {}, 0.0
    for name, by_size in results.items():
        base, large = by_size["base"], by_size["large"]
        ratio = large["p50_ms"] / base["p50_ms"]
        worst = max(worst, ratio)
        base_plan, plan = plans["base"].get(name, {}), plans["large"].get(name, {})
        table.append(
            [
                name,
                base["p50_ms"],
                base["p99_ms"],
                large["p50_ms"],
                large["p99_ms"],
                ratio,
                "ok" if ratio <= GOAL_RATIO else "SLOW",
                base_plan.get("execution_ms"),
                plan.get("execution_ms"),
                ",".join(plan.get("indexes", [])) or "—",
            ]
        )
        figures[name] = {
            "base": {**base, "plan_execution_ms": base_plan.get("execution_ms")},
            "large": {**large, "plan_execution_ms": plan.get("execution_ms")},
            "ratio_p50": round(ratio, 3),
            "plan_indexes": plan.get("indexes"),
            "plan_seq_scans": plan.get("seq_scans"),
        }
    print_table(
        table,
        [
            "scenario",
            "base p50",
            "base p99",
            "large p50",
            "large p99",
            "ratio",
            "goal",
            "db ms base",
            "db ms large",
            "indexes",
        ],
        title=f"List page and metrics latency (ms): {args.base_rows:,} rows (base) vs {args.rows:,} rows (large) "
        "per table, "
        f"{args.samples} requests each (round-robin), one keep-alive client; db ms: EXPLAIN ANALYZE execution time",
    )
    met = worst <= GOAL_RATIO
    print(f"\nworst ratio {worst:.2f} (goal <= {GOAL_RATIO} in every scenario: {'met' if met else 'NOT met'})")
    print(
        f"seeding: {seconds['seed_base']:.1f} s to {args.base_rows:,}, {seconds['seed_large']:.1f} s to {args.rows:,}"
        f"; rollup job over the seeded rows: {seconds['rollup_base']:.1f} s, {seconds['rollup_large']:.1f} s"
    )
    for label, by_step in rollup_plans.items():
        for step, plan in by_step.items():
            print(
                f"rollup job, {label}, {step}: {plan['execution_ms']} ms, indexes {','.join(plan['indexes']) or '—'}, "
                f"seq scans {','.join(plan['seq_scans']) or '—'}"
            )
    if args.explain:
        for name, plan in plans["large"].items():
            print(f"\n--- {name}\n{plan['sql']}\n" + "\n".join(plan["plan"]))
    print(f"uptime after: {uptime()}", file=sys.stderr)
    print_json_line(
        {
            "benchmark": "page_latency",
            "goal": {"large_over_base_p50": GOAL_RATIO},
            "worst_ratio": round(worst, 3),
            "goal_met": met,
            "rows": {"base": args.base_rows, "large": args.rows},
            "scenarios": figures,
            "seed_seconds": {k: round(v, 1) for k, v in seconds.items()},
            "rollup_job_plans": rollup_plans,
            "config": {"samples": args.samples, "sources": SOURCES, "destinations": DESTINATIONS},
            "machine": machine(),
            "uptime": uptime(),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
