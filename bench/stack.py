"""A production-shaped hookstream stack for benchmarks, and the helpers the scripts share.

``Stack`` runs the same processes as the ``Procfile`` — gunicorn (``hookstream.wsgi``), Celery
worker(s) and beat — on PostgreSQL and Redis, each as a subprocess of the benchmark::

    from bench.stack import Stack, start_receiver

    with Stack(db_name="hs_bench", redis_db=12) as stack, start_receiver() as receiver:
        destination = stack.api("POST", "/v1/destinations", {"name": "d", "type": "http", "url": receiver.url})
        ...

Entering the context:

1. drops and re-creates the PostgreSQL database ``db_name`` and runs ``migrate``;
2. creates an organization and an API key (``manage.py create_api_key --create-org``);
3. ``FLUSHDB`` on its two Redis databases: ``redis_db`` (cache) and ``redis_db + 1`` (broker);
4. starts gunicorn on a free loopback port, the Celery worker(s) and beat (``DEBUG=false``,
   fixed secrets, private networks allowed so loopback receivers are reachable);
5. waits until the API answers and every worker is ready.

Leaving it terminates every process group it started (SIGTERM, then SIGKILL after a grace
period). Process output goes to log files under ``stack.log_dir`` (printed on failure).

``start_receiver`` runs a fast HTTP receiver (uvicorn, raw ASGI, httptools + uvloop) in its
own process. It records every request (arrival time, event id, attempt number, path) and
answers as its query string says, so one receiver can play several destinations:

* ``?status=500`` — answer that status; ``?fail_attempts=2`` — answer 500 to attempts 1–2
  (by ``X-hookstream-Delivery-Attempt``) and ``status`` afterwards;
* ``?delay=5`` — sleep that many seconds before answering (a target that times out).

Run as a script, this module is that receiver: ``python bench/stack.py receiver --port N``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PG_BASE = PG_ADMIN_URL.rsplit("/", 1)[0]
REDIS_BASE = os.environ.get("BENCH_REDIS_BASE", "redis://127.0.0.1:6379")
# Fixed secrets: benchmark databases are thrown away, and a fixed encryption key lets a run
# be inspected afterwards with the same settings.
SECRET_KEY = "bench-secret-key-not-for-production-0123456789abcdefghijklmnopqrstuvwxyz"
ENCRYPTION_KEY = "YmVuY2gtZW5jcnlwdGlvbi1rZXktMzItYnl0ZXMhISE="  # urlsafe base64 of 32 bytes
EVENT_ID_HEADER = "x-hookstream-event-id"
ATTEMPT_HEADER = "x-hookstream-delivery-attempt"


def _bin(name: str) -> str:
    path = VENV_BIN / name
    return str(path) if path.exists() else name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop_group(process: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group ``process`` leads, then SIGKILL it after ``grace`` seconds."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(5)


def _wait_for(check, *, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # not up yet
            last_error = exc
        time.sleep(interval)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s (last error: {last_error})")


class Stack:
    """PostgreSQL database + Redis dbs + gunicorn + Celery worker(s) + beat, as in production."""

    def __init__(
        self,
        db_name: str = "hs_bench",
        redis_db: int = 12,
        web_workers: int = 2,
        web_threads: int = 4,
        celery_workers: int = 1,
        celery_pool: str = "threads",
        celery_concurrency: int = 8,
        extra_env: dict | None = None,
        *,
        beat: bool = True,
        worker_loglevel: str = "INFO",
        count_queries: bool = False,
        prefetch_multiplier: int | None = 1,
        org_slug: str = "bench",
        verbose: bool = True,
    ):
        if redis_db in (0, None):
            raise ValueError("redis db 0 is shared: pick your own db numbers")
        self.db_name = db_name
        self.redis_db = redis_db
        self.broker_db = redis_db + 1
        self.web_workers = web_workers
        self.web_threads = web_threads
        self.celery_workers = celery_workers
        self.celery_pool = celery_pool
        self.celery_concurrency = celery_concurrency
        self.beat = beat
        self.worker_loglevel = worker_loglevel
        self.count_queries = count_queries
        self.prefetch_multiplier = prefetch_multiplier
        self.org_slug = org_slug
        self.verbose = verbose
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.database_url = f"{PG_BASE}/{db_name}"
        self.redis_url = f"{REDIS_BASE}/{self.redis_db}"
        self.broker_url = f"{REDIS_BASE}/{self.broker_db}"
        self.log_dir = Path(tempfile.mkdtemp(prefix=f"hookstream-{db_name}-"))
        self.env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "CELERY_BROKER_URL": self.broker_url,
            "DEBUG": "false",
            "HOOKSTREAM_TESTING": "false",
            "SECRET_KEY": SECRET_KEY,
            "HOOKSTREAM_ENCRYPTION_KEY": ENCRYPTION_KEY,
            "HOOKSTREAM_ALLOW_PRIVATE_NETWORKS": "true",
            "HOOKSTREAM_PUBLIC_URL": self.base_url,
            "HOOKSTREAM_VAR_DIR": str(self.log_dir),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # The benchmarks themselves are far above the default per-minute limits.
            "HOOKSTREAM_RATE_LIMIT_PER_MINUTE": "0",
            "HOOKSTREAM_INGEST_RATE_LIMIT_PER_MINUTE": "0",
            "PYTHONUNBUFFERED": "1",
            **{k: str(v) for k, v in (extra_env or {}).items()},
        }
        self.api_key = ""
        self.org_id = ""
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self._session = None

    # --- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            self.dump_logs()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
        if exc_info[0] is not None and exc_info[0] is not KeyboardInterrupt:
            self.dump_logs()

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"[stack] {message}", file=sys.stderr, flush=True)

    def start(self) -> None:
        started = time.monotonic()
        self.database_reset()
        self.manage("migrate", "--noinput", "-v", "0")
        self.log(f"database {self.db_name} migrated ({time.monotonic() - started:.1f} s)")
        out = self.manage("create_api_key", "--org", self.org_slug, "--create-org", "--name", "bench")
        self.api_key = out.strip().splitlines()[-1].strip()
        self.redis_flush()
        self._spawn(
            "web",
            [
                _bin("gunicorn"),
                "-c",
                str(ROOT / "gunicorn.conf.py"),
                "hookstream.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.web_workers),
                "--threads",
                str(self.web_threads),
            ],
        )
        self.workers_start(wait=False)
        if self.beat:
            self._spawn(
                "beat",
                [
                    _bin("celery"),
                    "-A",
                    "hookstream",
                    "beat",
                    "--loglevel",
                    "INFO",
                    "--schedule",
                    str(self.log_dir / "celerybeat-schedule"),
                ],
            )
        _wait_for(self._web_ready, timeout=60, what="gunicorn")
        me = self.api("GET", "/v1/destinations?limit=1")
        assert "destinations" in me, me
        self.org_id = self._org_id()
        self._workers_wait()
        self.log(f"web {self.base_url}, {self.celery_workers} worker(s) ready ({time.monotonic() - started:.1f} s)")

    def workers_start(self, *, wait: bool = True) -> None:
        """Start the Celery worker processes (again, after :meth:`workers_stop`)."""
        self._ready_offsets = {}
        for number in range(1, self.celery_workers + 1):
            log = self.log_dir / f"worker{number}.log"
            self._ready_offsets[number] = log.stat().st_size if log.exists() else 0
            self._spawn(f"worker{number}", self.worker_command(number))
        if wait:
            self._workers_wait()

    def workers_stop(self) -> None:
        """Stop the Celery worker processes (warm shutdown: running tasks finish), keep the rest."""
        names = {f"worker{number}" for number in range(1, self.celery_workers + 1)}
        for name, process in [(n, p) for n, p in self.processes if n in names]:
            _stop_group(process, grace=30)
            self.processes.remove((name, process))
        for number in range(1, self.celery_workers + 1):
            self.query_file(number).unlink(missing_ok=True)  # a new process counts from zero

    def _workers_wait(self) -> None:
        for number in range(1, self.celery_workers + 1):
            _wait_for(lambda n=number: self._worker_ready(n), timeout=60, what=f"celery worker {number}")

    def wake_destinations(self, destination_ids: list[str]) -> None:
        """Send one ``deliveries.deliver_destination`` wake-up per destination straight to the
        broker (what ingest, beat or a manual retry sends)."""
        from celery import Celery

        app = Celery("hookstream-bench", broker=self.broker_url)
        try:
            with app.producer_or_acquire() as producer:
                for destination_id in destination_ids:
                    app.send_task("deliveries.deliver_destination", args=(destination_id,), producer=producer)
        finally:
            app.close()

    def worker_command(self, number: int) -> list[str]:
        """The worker's command line; with ``count_queries`` it runs under the statement counter."""
        if self.count_queries:
            launcher = [sys.executable, str(Path(__file__).resolve()), "counted-celery", str(self.query_file(number))]
        else:
            launcher = [_bin("celery")]
        return [
            *launcher,
            "-A",
            "hookstream",
            "worker",
            "--loglevel",
            self.worker_loglevel,
            "--pool",
            self.celery_pool,
            "--concurrency",
            str(self.celery_concurrency),
            "--hostname",
            f"bench{number}@%h",
            "--without-gossip",
            "--without-mingle",
            # As the Procfile: few reserved tasks, so a due retry is not queued behind many.
            *(["--prefetch-multiplier", str(self.prefetch_multiplier)] if self.prefetch_multiplier else []),
        ]

    def query_file(self, number: int) -> Path:
        return self.log_dir / f"worker{number}.queries.json"

    def worker_queries(self) -> dict[str, int]:
        """SQL statements the worker processes sent so far, per Celery task name (``count_queries``).

        Keys: ``<task name>`` (statements run inside that task), ``tasks:<task name>`` (tasks
        run), ``other`` (outside any task), ``connections`` (database connections opened).
        Written by the workers every 0.2 s and at exit.
        """
        total: dict[str, int] = {}
        for number in range(1, self.celery_workers + 1):
            try:
                counts = json.loads(self.query_file(number).read_text())
            except (OSError, ValueError):
                continue
            for key, value in counts.items():
                total[key] = total.get(key, 0) + value
        return total

    def database_counters(self) -> dict[str, int]:
        """``pg_stat_database`` counters of the stack's database (whole database, every process)."""
        columns = ("xact_commit", "xact_rollback", "tup_returned", "tup_fetched", "tup_inserted", "tup_updated")
        self.sql("SELECT pg_stat_clear_snapshot()")
        rows = self.sql(f"SELECT {', '.join(columns)} FROM pg_stat_database WHERE datname = %s", (self.db_name,))
        return dict(zip(columns, rows[0], strict=True)) if rows else {}

    def stop(self) -> None:
        for name, process in reversed(self.processes):
            _stop_group(process)
            self.log(f"stopped {name} (exit {process.returncode})")
        self.processes.clear()
        if self._session is not None:
            self._session.close()
            self._session = None

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115  (the child owns it)
        process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.processes.append((name, process))
        return process

    def _check_alive(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {self.log_dir / (name + '.log')}")

    def _web_ready(self) -> bool:
        self._check_alive()
        import requests

        return requests.get(f"{self.base_url}/v1/destinations", headers=self.headers, timeout=2).status_code == 200

    def _worker_ready(self, number: int) -> bool:
        self._check_alive()
        offset = getattr(self, "_ready_offsets", {}).get(number, 0)
        text = (self.log_dir / f"worker{number}.log").read_bytes()[offset:].decode(errors="replace")
        if self.worker_loglevel.upper() in ("INFO", "DEBUG"):
            return " ready." in text
        # Quieter log levels do not print "ready": ask the worker itself.
        reply = self.celery("inspect", "ping", "-d", f"bench{number}@{socket.gethostname()}", check=False)
        return "pong" in reply

    def dump_logs(self, lines: int = 40) -> None:
        for path in sorted(self.log_dir.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            print(f"--- {path} (last {len(tail)} lines)", file=sys.stderr)
            print("\n".join(tail), file=sys.stderr)

    # --- the database, Redis and management commands ---------------------------------------

    def database_reset(self) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.db_name}"')

    def redis_flush(self) -> None:
        import redis

        for db in (self.redis_db, self.broker_db):
            client = redis.Redis.from_url(f"{REDIS_BASE}/{db}")
            client.flushdb()
            client.close()

    def manage(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            [_bin("python"), "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def celery(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            [_bin("celery"), "-A", "hookstream", *args], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"celery {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def sql(self, query: str, params=None) -> list[tuple]:
        """Run one SQL statement on the stack's database; returns its rows (if any)."""
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def _org_id(self) -> str:
        rows = self.sql("SELECT id FROM hookstream_organization WHERE slug = %s", (self.org_slug,))
        return rows[0][0] if rows else ""

    # --- the API --------------------------------------------------------------------------

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    def api(self, method: str, path: str, json: dict | None = None, *, expect: int | None = None):
        """Call the API with the stack's key; returns the decoded JSON answer.

        Raises for an error status (or one other than ``expect``)."""
        import requests

        if self._session is None:
            self._session = requests.Session()
            self._session.headers.update(self.headers)
        response = self._session.request(method, self.base_url + path, json=json, timeout=30)
        bad = response.status_code != expect if expect is not None else response.status_code >= 400
        if bad:
            raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def http_destination(self, url: str, **fields) -> dict:
        """Create an HTTP destination (circuit breaker and retries as given in ``fields``)."""
        body = {"name": fields.pop("name", "bench"), "type": "http", "url": url, **fields}
        return self.api("POST", "/v1/destinations", body)

    def source_to(self, destination_id: str, **fields) -> tuple[dict, str]:
        """A source connected to ``destination_id``; returns the source and its ingest URL."""
        source = self.api("POST", "/v1/sources", {"name": fields.pop("name", "bench source"), **fields})
        self.api("POST", "/v1/connections", {"source_id": source["id"], "destination_id": destination_id})
        return source, f"{self.base_url}/v1/ingest/{source['id']}"


# --- the receiver -------------------------------------------------------------------------


class ReceiverHandle:
    """A running receiver process: ``url`` to deliver to, ``records()`` of what arrived."""

    def __init__(self, process: subprocess.Popen, port: int):
        self.process = process
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.url = f"{self.base_url}/hook"
        import requests

        self._session = requests.Session()

    def url_for(self, **behaviour) -> str:
        """The delivery URL with a behaviour (``status``, ``fail_attempts``, ``delay``, ``tag``)."""
        query = "&".join(f"{k}={v}" for k, v in behaviour.items())
        return f"{self.url}?{query}" if query else self.url

    def count(self) -> int:
        return int(self._session.get(f"{self.base_url}/_count", timeout=10).json()["count"])

    def records(self, since: int = 0) -> list[dict]:
        """Every request recorded from index ``since``: ``{"at", "event_id", "attempt", "path", "status"}``
        (``at`` is the arrival time, ``time.time()`` of the receiver)."""
        rows = self._session.get(f"{self.base_url}/_records?since={since}", timeout=30).json()["records"]
        return [dict(zip(("at", "event_id", "attempt", "path", "status"), row, strict=True)) for row in rows]

    def reset(self) -> None:
        self._session.post(f"{self.base_url}/_reset", timeout=10)

    def wait_for(self, count: int, *, timeout: float, interval: float = 0.05) -> int:
        """Poll until at least ``count`` requests arrived (or the time-out); returns the count."""
        deadline = time.monotonic() + timeout
        seen = self.count()
        while seen < count and time.monotonic() < deadline:
            time.sleep(interval)
            seen = self.count()
        return seen

    def stop(self) -> None:
        self._session.close()
        _stop_group(self.process, grace=3)


@contextmanager
def start_receiver(*, status: int = 200, delay: float = 0.0, log_dir: Path | None = None):
    """Run the receiver in its own process; yields a :class:`ReceiverHandle`.

    ``status`` and ``delay`` are the defaults for requests whose query string says nothing.
    """
    import requests

    port = free_port()
    log_path = (log_dir or Path(tempfile.gettempdir())) / f"hookstream-receiver-{port}.log"
    log = open(log_path, "ab")  # noqa: SIM115  (the child owns it)
    command = [sys.executable, str(Path(__file__).resolve()), "receiver", "--port", str(port)]
    command += ["--status", str(status), "--delay", str(delay)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    handle = ReceiverHandle(process, port)
    try:

        def up():
            if process.poll() is not None:
                raise RuntimeError(f"receiver exited with {process.returncode}; see {log_path}")
            return requests.get(f"{handle.base_url}/_count", timeout=1).status_code == 200

        _wait_for(up, timeout=30, what="receiver")
        yield handle
    finally:
        handle.stop()


def receiver_app(default_status: int = 200, default_delay: float = 0.0):
    """The raw ASGI application of the receiver (see the module docstring)."""
    import asyncio

    records: list[tuple] = []

    async def answer(send, status: int, body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        at = time.time()
        more = True
        while more:  # drain the request body
            message = await receive()
            more = message.get("more_body", False)
        path = scope["path"]
        query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
        if path == "/_count":
            return await answer(send, 200, json.dumps({"count": len(records)}).encode())
        if path == "/_records":
            since = int(query.get("since", 0))
            return await answer(send, 200, json.dumps({"records": records[since:]}).encode())
        if path == "/_reset":
            records.clear()
            return await answer(send, 200, b'{"ok":true}')
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        event_id = headers.get(EVENT_ID_HEADER) or headers.get("webhook-id") or ""
        attempt = int(headers.get(ATTEMPT_HEADER) or 0)
        status = int(query.get("status", default_status))
        if attempt and attempt <= int(query.get("fail_attempts", 0)):
            status = 500
        delay = float(query.get("delay", default_delay))
        records.append((at, event_id, attempt, path + (f"?tag={query['tag']}" if "tag" in query else ""), status))
        if delay:
            await asyncio.sleep(delay)
        return await answer(send, status, b'{"ok":true}' if status < 400 else b'{"ok":false}')

    return app


def _receiver_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="hookstream benchmark receiver")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args(argv)
    import uvicorn

    uvicorn.run(
        receiver_app(args.status, args.delay),
        host="127.0.0.1",
        port=args.port,
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level="warning",
        lifespan="off",
    )


# --- statement counting in the workers ------------------------------------------------------


def _counted_celery(argv: list[str]) -> None:
    """Run ``celery <argv[1:]>`` with every SQL statement of this process counted per task.

    A Django execute wrapper (installed on each new database connection) counts statements
    under the name of the Celery task running in that thread (``task_prerun`` /
    ``task_postrun``). Transaction control (BEGIN, COMMIT) and the connection health check
    do not pass through execute wrappers and are not counted. Counts are written as JSON to
    ``argv[0]`` every 0.2 s and at exit.
    """
    import atexit
    import threading
    from collections import Counter

    counter_path = Path(argv[0])
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookstream.settings")
    import django

    django.setup()
    from celery.signals import task_postrun, task_prerun
    from django.db.backends.signals import connection_created

    counts: Counter = Counter()
    lock = threading.Lock()
    local = threading.local()

    def count_statement(execute, sql, params, many, context):
        with lock:
            counts[getattr(local, "task", "other")] += 1
        return execute(sql, params, many, context)

    def on_connection(sender, connection, **kwargs):
        with lock:
            counts["connections"] += 1
        if count_statement not in connection.execute_wrappers:
            connection.execute_wrappers.append(count_statement)

    def on_prerun(sender=None, **kwargs):
        local.task = sender.name
        with lock:
            counts[f"tasks:{sender.name}"] += 1

    def on_postrun(sender=None, **kwargs):
        local.task = "other"

    connection_created.connect(on_connection, weak=False)
    task_prerun.connect(on_prerun, weak=False)
    task_postrun.connect(on_postrun, weak=False)

    def write() -> None:
        with lock:
            snapshot = dict(counts)
        tmp = counter_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(snapshot))
        tmp.replace(counter_path)

    def writer() -> None:
        while True:
            time.sleep(0.2)
            write()

    threading.Thread(target=writer, daemon=True, name="query-counter").start()
    atexit.register(write)
    from celery.bin.celery import main as celery_main

    sys.argv = ["celery", *argv[1:]]
    celery_main()


# --- shared helpers -----------------------------------------------------------------------


def percentile(values, p: float) -> float | None:
    """The ``p``-th percentile (0–100) with linear interpolation; None for no values."""
    data = sorted(values)
    if not data:
        return None
    if len(data) == 1:
        return float(data[0])
    rank = (len(data) - 1) * p / 100.0
    low = int(rank)
    high = min(low + 1, len(data) - 1)
    return float(data[low] + (data[high] - data[low]) * (rank - low))


def print_table(rows: list[list], headers: list[str], *, title: str | None = None) -> None:
    """A plain aligned text table on stdout."""

    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
        return "—" if value is None else str(value)

    text = [[cell(v) for v in row] + [""] * (len(headers) - len(row)) for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) if text else len(h) for i, h in enumerate(headers)]
    if title:
        print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in text:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def event_body(number: int) -> bytes:
    """A typical ~870-byte JSON webhook body (the size the sender baseline was measured with)."""
    payload = {
        "type": "order.updated",
        "id": f"ord_{number:012d}",
        "sequence": number,
        "data": {
            "customer": {"id": f"cus_{number % 977:08d}", "email": "someone@example.com", "name": "Jane Example"},
            "items": [{"sku": f"SKU-{i:04d}", "quantity": i + 1, "price_cents": 1299 + i} for i in range(6)],
            "shipping": {"line1": "1 Example Street", "city": "Springfield", "country": "US", "postcode": "12345"},
            "notes": "x" * 240,
        },
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def _send_share(args: tuple[str, list[int]]) -> list[tuple[str, float, float, int]]:
    """One ingest sender: posts its events in order, at once; returns (event id, start, end, status)."""
    url, numbers = args
    return _send_paced((url, numbers, 0.0, 0.0))


def ingest(url: str, events: int, senders: int) -> list[tuple[str, float, float, int]]:
    """Post events ``0..events-1`` to ``url`` from ``senders`` processes (keep-alive, each in order).

    Returns (event id, start, end, status) per request; times are ``time.time()``."""
    shares = [(url, list(range(i, events, senders))) for i in range(senders)]
    with multiprocessing.get_context("fork").Pool(senders) as pool:
        return [row for share in pool.map(_send_share, shares) for row in share]


def _send_paced(args: tuple[str, list[int], float, float]) -> list[tuple[str, float, float, int]]:
    """One paced sender: posts event ``numbers[k]`` at ``start + k * interval`` (or at once if late)."""
    import requests

    url, numbers, start, interval = args
    results = []
    headers = {"Content-Type": "application/json"}
    with requests.Session() as session:
        for k, number in enumerate(numbers):
            pause = start + k * interval - time.time()
            if pause > 0:
                time.sleep(pause)
            body = event_body(number)
            started = time.time()
            response = session.post(url, data=body, headers=headers, timeout=30)
            ended = time.time()
            event_id = response.json().get("event_id", "") if response.status_code == 200 else ""
            results.append((event_id, started, ended, response.status_code))
    return results


def ingest_paced(
    url: str, events: int, rate: float, senders: int, first: int = 0
) -> list[tuple[str, float, float, int]]:
    """Post events ``first..first+events-1`` at ``rate`` per second in all, evenly spread over
    ``senders`` processes (sender i starts i/rate later). Same rows as :func:`ingest`."""
    start = time.time() + 0.5
    interval = senders / rate
    shares = [
        (url, list(range(first + i, first + events, senders)), start + i / rate, interval) for i in range(senders)
    ]
    with multiprocessing.get_context("fork").Pool(senders) as pool:
        return [row for share in pool.map(_send_paced, shares) for row in share]


def uptime() -> str:
    """``uptime``'s line (the load averages), recorded before and after a benchmark."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict:
    """What the figures were measured on (they are only comparable on the same machine)."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "ram_gb": ram_gb,
        "load_avg": load,
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def print_json_line(figures: dict) -> None:
    """The last line of every benchmark: one JSON object of its figures."""
    print(json.dumps(figures, sort_keys=True, default=str), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "receiver":
        _receiver_main(sys.argv[2:])
    elif len(sys.argv) > 2 and sys.argv[1] == "counted-celery":
        _counted_celery(sys.argv[2:])
    else:
        print("usage: python bench/stack.py receiver --port N [--status S] [--delay SECONDS]", file=sys.stderr)
        sys.exit(2)
