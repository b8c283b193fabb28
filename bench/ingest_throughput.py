"""Ingest throughput: requests/s and latency of ``POST /v1/ingest/<source id>`` against a no-op view.

    .venv/bin/python bench/ingest_throughput.py            # defaults: < 3 minutes
    .venv/bin/python bench/ingest_throughput.py --duration 20 --connections 32

The stack is production-shaped (``bench.stack.Stack``): PostgreSQL, Redis, gunicorn with 2
workers x 4 threads. The source has one connection to an active HTTP destination, so every
ingest fans out: it stores the event, inserts a delivery and enqueues its wake-up on the
Redis broker. **No Celery worker and no beat run** (``celery_workers=0, beat=False``): the
deliveries wait in the database and the broker, so delivering (and beat re-waking what
nobody consumes) does not compete with ingest for the two cores. The
per-IP ingest rate limiter is on (a limit far above the load), so its Redis round trip is paid.

The baseline is ``POST /bench/noop`` (``hookstream.bench_views``, enabled by
``HOOKSTREAM_BENCH_NOOP``) on the same gunicorn, through the same middleware, with the same
body, the same load generator and the same number of keep-alive connections. Rounds alternate
noop / ingest so that a change in the machine's load hits both; each figure is the median of
its rounds. Goal (the "Speed" issue): ingest requests/s >= 0.35 x noop requests/s.

The load generator is ``--processes`` client processes, each with ``connections / processes``
threads, each thread one keep-alive ``http.client`` connection sending back to back (a closed
loop). Its own capacity is measured first against a canned-response server (asyncio, one
process): when that is far above the noop rate, the generator is not what limits the figures.
The generator's CPU time during each round is reported too (it shares the two cores).

The last line of the output is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import resource
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.stack import (  # noqa: E402
    Stack,
    free_port,
    machine,
    percentile,
    print_json_line,
    print_table,
    uptime,
)

GOAL_RATIO = 0.35


def sample_body(size: int) -> bytes:
    """A JSON webhook body of about ``size`` bytes, shaped like a payment provider's event."""
    event = {
        "id": "evt_1NqXo2LkdIwHu7ix0bYcQ3xK",
        "type": "invoice.payment_succeeded",
        "created": 1700000000,
        "livemode": False,
        "data": {
            "object": {
                "id": "in_1NqXo1LkdIwHu7ixk9mZ2pQr",
                "customer": "cus_OdpbxR7kRk5Fh2",
                "amount_paid": 4200,
                "currency": "eur",
                "lines": [{"description": "Pro plan", "amount": 4200, "quantity": 1}],
            }
        },
        "pad": "",
    }
    base = len(json.dumps(event, separators=(",", ":")))
    event["pad"] = "x" * max(0, size - base)
    return json.dumps(event, separators=(",", ":")).encode()


# --- the load generator -------------------------------------------------------------------


def _client_thread(host, port, path, body, headers, start_at, record_from, stop_at, out):
    latencies, statuses, errors = [], {}, 0
    conn = None
    while time.time() < start_at:
        time.sleep(0.001)
    while True:
        now = time.time()
        if now >= stop_at:
            break
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=30)
                conn.connect()
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            began = time.perf_counter()
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - began
            if response.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            errors += 1
            if conn is not None:
                conn.close()
            conn = None
            continue
        if now >= record_from:
            latencies.append(elapsed)
            statuses[response.status] = statuses.get(response.status, 0) + 1
    if conn is not None:
        conn.close()
    out.append((latencies, statuses, errors))


def _client_process(url, body, threads, start_at, record_from, stop_at, queue):
    parts = urlsplit(url)
    headers = {"Content-Type": "application/json", "User-Agent": "hookstream-bench"}
    out: list = []
    workers = [
        threading.Thread(
            target=_client_thread,
            args=(parts.hostname, parts.port, parts.path, body, headers, start_at, record_from, stop_at, out),
        )
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    latencies = [x for result in out for x in result[0]]
    statuses: dict = {}
    for result in out:
        for code, n in result[1].items():
            statuses[code] = statuses.get(code, 0) + n
    queue.put((latencies, statuses, sum(r[2] for r in out), usage.ru_utime + usage.ru_stime))


def run_load(url: str, body: bytes, *, connections: int, processes: int, warmup: float, duration: float) -> dict:
    """Drive ``url`` with ``connections`` keep-alive connections for ``warmup + duration`` seconds."""
    processes = max(1, min(processes, connections))
    per_process = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    start_at = time.time() + 0.3
    record_from = start_at + warmup
    stop_at = record_from + duration
    children = [
        context.Process(target=_client_process, args=(url, body, n, start_at, record_from, stop_at, queue))
        for n in per_process
    ]
    for child in children:
        child.start()
    results = [queue.get(timeout=warmup + duration + 120) for _ in children]
    for child in children:
        child.join()
    latencies = [x for r in results for x in r[0]]
    statuses: dict = {}
    for r in results:
        for code, n in r[1].items():
            statuses[code] = statuses.get(code, 0) + n
    cpu = sum(r[3] for r in results)
    return {
        "requests": len(latencies),
        "rps": len(latencies) / duration,
        "p50_ms": (percentile(latencies, 50) or 0) * 1000,
        "p99_ms": (percentile(latencies, 99) or 0) * 1000,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": sum(r[2] for r in results),
        # Share of the machine's CPU the generator used (warm-up included in the numerator,
        # so this slightly overstates it).
        "generator_cpu_share": cpu / ((warmup + duration) * (os.cpu_count() or 1)),
    }


# --- the canned-response server (the generator's own capacity) ----------------------------


def _canned_server(port: int) -> None:
    reply = b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

    class Canned(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.buffer = b""

        def data_received(self, data):
            self.buffer += data
            while True:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buffer[:end].lower()
                length = 0
                marker = head.find(b"content-length:")
                if marker >= 0:
                    length = int(head[marker + 15 :].split(b"\r\n", 1)[0])
                if len(self.buffer) < end + 4 + length:
                    return
                self.buffer = self.buffer[end + 4 + length :]
                self.transport.write(reply)

    async def main():
        server = await asyncio.get_running_loop().create_server(Canned, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def generator_capacity(body: bytes, *, connections: int, processes: int, duration: float) -> dict:
    port = free_port()
    server = multiprocessing.get_context("fork").Process(target=_canned_server, args=(port,), daemon=True)
    server.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        return run_load(
            f"http://127.0.0.1:{port}/canned",
            body,
            connections=connections,
            processes=processes,
            warmup=1.0,
            duration=duration,
        )
    finally:
        server.terminate()
        server.join(5)


# --- where an ingest's CPU goes -------------------------------------------------------------


def cpu_breakdown(stack: Stack, source_id: str, body: bytes, *, n: int = 200) -> dict[str, float]:
    """CPU milliseconds per call (``time.process_time``, so waits on the network, the disk and
    other processes are not counted) of a whole request through Django (test client, no
    gunicorn) and of each step of ingest, run here against the stack's database and Redis."""
    os.environ.update(stack.env)
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookstream.settings")
    import django

    django.setup()
    from django.test import Client
    from django.utils import timezone

    from deliveries import dispatch, fanout
    from hookstream.api import ratelimit
    from intake import selectors, services

    client = Client()
    source, routes = selectors.source_for_ingest(source_id=source_id)
    incoming = services.Incoming(
        method="POST", body=body, headers={"Content-Type": "application/json"}, content_type="application/json"
    )
    selectors.source_for_ingest(source_id=source_id)  # learns the source's organization
    steps = {
        "request: POST /bench/noop": lambda: client.post("/bench/noop", body, content_type="application/json"),
        "request: POST /v1/ingest": lambda: client.post(
            f"/v1/ingest/{source_id}", body, content_type="application/json"
        ),
        "step: rate limit (Redis)": lambda: ratelimit.hit("ip:cpu-breakdown", 10**9),
        "step: source and routes (from memory: 1 Redis GET)": lambda: selectors.source_for_ingest(source_id=source_id),
        "step: store + fan out + counters": lambda: fanout.event_ingest(
            source=source, routes=routes, incoming=incoming
        ),
        "  of which: counters (1 UPDATE)": lambda: services.source_count_event(source=source, now=timezone.now()),
        "  of which: wake-up on the broker": lambda: dispatch.destination_wake("dst_cpu_breakdown", force=True),
    }
    figures = {}
    for name, step in steps.items():
        for _ in range(20):
            step()
        began = time.process_time()
        for _ in range(n):
            step()
        figures[name] = (time.process_time() - began) / n * 1000
    return figures


# --- the benchmark ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-name", default="hs_bench_b", help="PostgreSQL database (dropped and re-created)")
    parser.add_argument("--redis-db", type=int, default=14, help="Redis cache db; the broker uses the next one")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--duration", type=float, default=12.0, help="measured seconds per round")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each endpoint (alternating)")
    parser.add_argument("--body-bytes", type=int, default=870, help="size of the JSON body")
    args = parser.parse_args(argv)

    body = sample_body(args.body_bytes)
    load = {"connections": args.connections, "processes": args.processes}
    print(f"uptime before: {uptime()}", file=sys.stderr)
    capacity = generator_capacity(body, duration=min(args.duration, 5.0), **load)

    extra_env = {
        "HOOKSTREAM_BENCH_NOOP": "true",
        # The limiter runs on every ingest (as in production) but never refuses one.
        "HOOKSTREAM_INGEST_RATE_LIMIT_PER_MINUTE": "1000000000",
        "LOG_LEVEL": "WARNING",
    }
    rounds: dict[str, list[dict]] = {"noop": [], "ingest": []}
    with Stack(
        db_name=args.db_name, redis_db=args.redis_db, celery_workers=0, beat=False, extra_env=extra_env
    ) as stack:
        destination = stack.http_destination("http://127.0.0.1:9/hook", name="bench target")
        source, ingest_url = stack.source_to(destination["id"], name="bench source")
        urls = {"noop": f"{stack.base_url}/bench/noop", "ingest": ingest_url}
        for _ in range(args.rounds):
            for name in ("noop", "ingest"):
                result = run_load(urls[name], body, warmup=args.warmup, duration=args.duration, **load)
                rounds[name].append(result)
                print(
                    f"[round] {name}: {result['rps']:.0f} req/s, p50 {result['p50_ms']:.1f} ms, "
                    f"p99 {result['p99_ms']:.1f} ms, statuses {result['statuses']}",
                    file=sys.stderr,
                )
        stored = stack.sql("SELECT count(*) FROM intake_event WHERE source_id = %s", (source["id"],))[0][0]
        deliveries = stack.sql("SELECT count(*) FROM deliveries_delivery")[0][0]
        cpu = cpu_breakdown(stack, source["id"], body)

    def summary(name):
        runs = rounds[name]
        return {
            "rps": statistics.median(r["rps"] for r in runs),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "requests": sum(r["requests"] for r in runs),
            "non_2xx": sum(n for r in runs for code, n in r["statuses"].items() if not code.startswith("2")),
            "errors": sum(r["errors"] for r in runs),
            "generator_cpu_share": statistics.median(r["generator_cpu_share"] for r in runs),
            "rounds_rps": [round(r["rps"], 1) for r in runs],
        }

    noop, ingest = summary("noop"), summary("ingest")
    ratio = ingest["rps"] / noop["rps"] if noop["rps"] else 0.0
    print_table(
        [
            ["generator vs canned server", capacity["rps"], capacity["p50_ms"], capacity["p99_ms"], "—", "—"],
            ["POST /bench/noop (baseline)", noop["rps"], noop["p50_ms"], noop["p99_ms"], noop["non_2xx"], "—"],
            ["POST /v1/ingest/<source>", ingest["rps"], ingest["p50_ms"], ingest["p99_ms"], ingest["non_2xx"], ratio],
        ],
        ["endpoint", "req/s", "p50 ms", "p99 ms", "non-2xx", "ratio"],
        title=f"Ingest throughput — {args.connections} connections, {args.processes} client processes, "
        f"{args.rounds} x {args.duration:.0f} s rounds, {len(body)}-byte JSON body, no Celery worker",
    )
    print(
        f"\ningest/noop = {ratio:.2f} (goal >= {GOAL_RATIO}: {'met' if ratio >= GOAL_RATIO else 'NOT met'}); "
        f"generator capacity / noop rate = {capacity['rps'] / noop['rps']:.1f}x; "
        f"generator CPU share: {noop['generator_cpu_share']:.0%} (noop), {ingest['generator_cpu_share']:.0%} (ingest); "
        f"events stored {stored}, deliveries {deliveries}"
    )
    print_table(
        [[name, ms] for name, ms in cpu.items()],
        ["in-process, one request at a time", "CPU ms per call"],
        title="Where the CPU goes (Python side only; PostgreSQL and Redis work is not included)",
    )
    print(f"uptime after: {uptime()}", file=sys.stderr)
    print_json_line(
        {
            "benchmark": "ingest_throughput",
            "cpu_ms_per_call": {k.strip(): round(v, 3) for k, v in cpu.items()},
            "goal": {"ingest_over_noop_rps": GOAL_RATIO},
            "ratio": round(ratio, 3),
            "goal_met": ratio >= GOAL_RATIO,
            "ingest": ingest,
            "noop": noop,
            "generator_capacity": {k: capacity[k] for k in ("rps", "p50_ms", "p99_ms", "errors")},
            "generator_capacity_over_noop": round(capacity["rps"] / noop["rps"], 2) if noop["rps"] else None,
            "events_stored": stored,
            "deliveries_created": deliveries,
            "config": {
                **load,
                "duration_s": args.duration,
                "rounds": args.rounds,
                "body_bytes": len(body),
                "web": "gunicorn 2 workers x 4 threads",
                "celery_workers": 0,
            },
            "machine": machine(),
            "uptime": uptime(),
        }
    )
    return 0 if ingest["errors"] == 0 and ingest["non_2xx"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
