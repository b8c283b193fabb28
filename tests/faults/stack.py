"""A private hookstream stack for fault injection: its own PostgreSQL and Redis on free ports,
gunicorn, Celery worker and beat as subprocesses, a load generator and the checks of issue #7.

Nothing here touches the shared PostgreSQL (5432) or Redis (6379): the faults (kill -9,
FLUSHALL, restarts) are injected into instances this module starts in a temporary directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import itertools
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
import requests
from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent.parent
# Deliveries that are not finished yet (everything else is final).
UNFINISHED = ("pending", "scheduled", "in_flight", "held")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s")


def _die_with_parent() -> None:
    """Child processes get SIGKILL if the test process dies, so a crashed run leaves no stack."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def postgres_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which(name)


def postgres_available() -> bool:
    if not (postgres_bin("initdb") and postgres_bin("pg_ctl")):
        return False
    # initdb refuses to run as root: CI (root) runs it as the postgres user.
    return os.geteuid() != 0 or (_postgres_user() is not None and shutil.which("runuser") is not None)


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


def _postgres_user():
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return None


class PrivatePostgres:
    """A throw-away cluster on a free port.

    ``fsync=off`` is safe for the restart test: it only matters if the operating system
    crashes, and a killed postmaster leaves every written WAL page in the kernel's cache.
    ``synchronous_commit`` stays on: with it off a commit is acknowledged while its WAL record
    may still be in PostgreSQL's shared memory, and ``pg_ctl stop -m immediate`` would lose
    events whose ingest had answered 200 — the very guarantee under test.
    """

    def __init__(self, root: Path):
        self.dir = root / "pg"
        self.socket_dir = root
        self.log = root / "postgres.log"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            user = _postgres_user()
            os.chown(root, user.pw_uid, user.pw_gid)

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = list(args)
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode:
            raise RuntimeError(f"{' '.join(args[:1])} failed ({done.returncode}): {done.stderr}")

    def init(self) -> None:
        self._run(
            postgres_bin("initdb"), "-D", str(self.dir), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"
        )
        self.start()
        with self.connect(dbname="postgres") as conn:
            conn.execute("CREATE DATABASE hookstream")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        )
        self._run(
            postgres_bin("pg_ctl"), "-D", str(self.dir), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start"
        )

    def stop(self, mode: str = "immediate") -> None:
        self._run(postgres_bin("pg_ctl"), "-D", str(self.dir), "-m", mode, "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/hookstream"

    def connect(self, dbname: str = "hookstream"):
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True, connect_timeout=5
        )

    def query(self, sql: str, params=()) -> list[tuple]:
        with self.connect() as conn:
            return conn.execute(sql, params).fetchall()


class PrivateRedis:
    def __init__(self, root: Path):
        self.dir = root
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=open(self.dir / "redis.log", "ab"),  # noqa: SIM115  (the child keeps it)
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        wait_port(self.port, 10, "redis-server")

    def client(self):
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


@dataclass
class Result:
    """One ingest request of the load: what was sent and how it was answered."""

    seq: int
    sent_at: float
    done_at: float = 0.0
    status: int | None = None  # None: no answer (time-out or connection error)
    error: str = ""
    event_id: str | None = None


class Load:
    """Ingest events steadily from a few threads; each body carries a sequence number."""

    def __init__(self, url: str, rate: float, threads: int = 3, timeout: float = 10.0):
        self.url = url
        self.interval = threads / rate
        self.threads = threads
        self.timeout = timeout
        self.results: list[Result] = []
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> Load:
        for n in range(self.threads):
            thread = threading.Thread(target=self._run, args=(n,), daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def stop(self) -> list[Result]:
        self._stop.set()
        for thread in self._workers:
            thread.join(self.timeout + 5)
        return list(self.results)

    def _run(self, n: int) -> None:
        session = requests.Session()
        next_at = time.monotonic() + n * self.interval / self.threads
        while not self._stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at = max(next_at + self.interval, time.monotonic() - 1)
            result = Result(seq=next(self._seq), sent_at=time.time())
            body = json.dumps({"type": "fault.test", "seq": result.seq})
            try:
                response = session.post(
                    self.url, data=body, headers={"Content-Type": "application/json"}, timeout=(3, self.timeout)
                )
                result.status = response.status_code
                if response.status_code == 200:
                    result.event_id = response.json()["event_id"]
            except requests.RequestException as exc:
                result.error = f"{type(exc).__name__}: {exc}"
                session = requests.Session()
            result.done_at = time.time()
            with self._lock:
                self.results.append(result)


@dataclass
class Stack:
    """PostgreSQL, Redis, gunicorn, Celery worker(s) and beat, all private to one test module."""

    root: Path
    postgres: PrivatePostgres
    redis: PrivateRedis
    web_port: int = field(default_factory=free_port)
    workers: list[subprocess.Popen] = field(default_factory=list)
    others: list[subprocess.Popen] = field(default_factory=list)
    killed: list[subprocess.Popen] = field(default_factory=list)
    web: subprocess.Popen | None = None
    source_id: str = ""
    worker_concurrency: int = 4
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(50))
    encryption_key: str = field(default_factory=lambda: Fernet.generate_key().decode())
    _worker_numbers: itertools.count = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def create(cls) -> Stack:
        root = Path(tempfile.mkdtemp(prefix="hookstream-faults-"))
        return cls(root=root, postgres=PrivatePostgres(root), redis=PrivateRedis(root))

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "HOOKSTREAM_TESTING"}
        }
        env.update(
            DJANGO_SETTINGS_MODULE="hookstream.settings",
            DATABASE_URL=self.postgres.url,
            REDIS_URL=self.redis.url(0),
            CELERY_BROKER_URL=self.redis.url(1),
            DEBUG="false",
            HOOKSTREAM_TESTING="false",
            SECRET_KEY=self.secret_key,
            HOOKSTREAM_ENCRYPTION_KEY=self.encryption_key,
            HOOKSTREAM_VAR_DIR=str(self.root / "var"),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            HOOKSTREAM_ALLOW_PRIVATE_NETWORKS="true",
            # Recovery in seconds rather than minutes (README, Configuration).
            HOOKSTREAM_LEASE_SECONDS="5",
            HOOKSTREAM_BEAT_INTERVAL_SECONDS="0.5",
            HOOKSTREAM_WAKE_GRACE_SECONDS="2",
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )
        return env

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115  (the child keeps it)
        return subprocess.Popen(
            [sys.executable, *args],
            cwd=BASE_DIR,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def up(self, receiver_url: str) -> None:
        """Start everything, migrate, and route a source to an HTTP destination at the receiver."""
        self.postgres.init()
        self.redis.start()
        self.manage("migrate", "--noinput", "-v", "0")
        api_key = self.manage("create_api_key", "--org", "faults", "--create-org").strip().splitlines()[-1]
        self.web = self._spawn(
            "web",
            "-m",
            "gunicorn",
            "hookstream.wsgi",
            "--bind",
            f"127.0.0.1:{self.web_port}",
            "--workers",
            "2",
            "--threads",
            "4",
        )
        self.others.append(self.web)
        self.others.append(
            self._spawn(
                "beat", "-m", "celery", "-A", "hookstream", "beat", "--schedule", str(self.root / "celerybeat-schedule")
            )
        )
        self.start_worker()
        wait_port(self.web_port, 30, "gunicorn")
        self._configure(api_key, receiver_url)

    def _configure(self, api_key: str, receiver_url: str) -> None:
        api = requests.Session()
        api.headers["X-API-Key"] = api_key
        base = f"http://127.0.0.1:{self.web_port}/v1"

        def create(path: str, body: dict) -> str:
            response = api.post(f"{base}/{path}", json=body, timeout=30)
            assert response.status_code == 201, response.text
            return response.json()["id"]

        destination_id = create(
            "destinations",
            {
                "name": "Receiver",
                "type": "http",
                "url": receiver_url,
                "timeout_ms": 3000,
                "retry_intervals": [1],
                "retry_max_attempts": 10,
            },
        )
        self.source_id = create("sources", {"name": "Load"})
        create("connections", {"source_id": self.source_id, "destination_id": destination_id})

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/v1/ingest/{self.source_id}"

    def start_worker(self, prefetch_multiplier: int = 1) -> subprocess.Popen:
        """A worker as the Procfile runs it (prefetch multiplier 1 unless asked otherwise),
        returned once it is consuming."""
        n = next(self._worker_numbers)
        name = f"worker-{n}"
        worker = self._spawn(
            name,
            "-m",
            "celery",
            "-A",
            "hookstream",
            "worker",
            "--loglevel",
            "INFO",
            "--pool",
            "threads",
            "--concurrency",
            str(self.worker_concurrency),
            "--prefetch-multiplier",
            str(prefetch_multiplier),
            "--hostname",
            f"faults-{n}@%h",
        )
        self.workers.append(worker)
        log = self.root / f"{name}.log"
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start\n{self.logs()}")
            time.sleep(0.1)
        return worker

    def stop_worker(self, worker: subprocess.Popen) -> None:
        """A warm shutdown: the worker finishes what it is running."""
        worker.terminate()
        worker.wait(timeout=30)
        self.workers.remove(worker)

    def kill_workers(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGKILL)
                worker.wait(timeout=10)
        self.killed.extend(self.workers)
        self.workers = []

    def exited(self) -> list[str]:
        """The command lines of stack processes that have exited (other than those killed)."""
        return [" ".join(map(str, p.args[2:7])) for p in [*self.workers, *self.others] if p.poll() is not None]

    def restart_redis(self, flush: bool = True) -> None:
        if flush:
            self.redis.client().flushall()
        self.redis.kill()
        self.redis.start()

    def down(self) -> None:
        """Stop everything and delete the directory. Celery processes are killed outright:
        nothing they would finish matters any more, and a warm shutdown waits for tasks."""
        processes = [*self.workers, *self.others, *self.killed]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM if process is self.web else signal.SIGKILL)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.redis.kill()
        with contextlib.suppress(Exception):
            self.postgres.stop("immediate")
        if os.environ.get("HOOKSTREAM_FAULTS_KEEP"):
            print(f"fault stack logs kept in {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def logs(self, lines: int = 40) -> str:
        """The end of every process log, for a failure message."""
        out = []
        for path in sorted(self.root.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    # --- what the database says -------------------------------------------------------------

    def unfinished(self) -> int:
        return self.postgres.query(
            "SELECT count(*) FROM deliveries_delivery WHERE status = ANY(%s)", (list(UNFINISHED),)
        )[0][0]

    def in_flight_event_ids(self, claimed_before: float | None = None) -> set[str]:
        sql = "SELECT event_id FROM deliveries_delivery WHERE status = 'in_flight'"
        params: tuple = ()
        if claimed_before is not None:
            sql += " AND updated_at < to_timestamp(%s)"
            params = (claimed_before,)
        return {row[0] for row in self.postgres.query(sql, params)}

    def attempts_of(self, event_ids) -> list[tuple]:
        """(event, delivery status, claimed at, attempt number, attempt status, attempt at) for a
        failure message."""
        return self.postgres.query(
            "SELECT d.event_id, d.status, extract(epoch FROM d.updated_at), a.attempt_number, a.status,"
            " extract(epoch FROM a.created_at) FROM deliveries_delivery d"
            " LEFT JOIN deliveries_deliveryattempt a ON a.delivery_id = d.id"
            " WHERE d.event_id = ANY(%s) ORDER BY d.event_id, a.attempt_number",
            (list(event_ids),),
        )

    def stored_event_ids(self, ids) -> set[str]:
        return {row[0] for row in self.postgres.query("SELECT id FROM intake_event WHERE id = ANY(%s)", (list(ids),))}

    def dead_deliveries(self) -> int:
        return self.postgres.query("SELECT count(*) FROM deliveries_delivery WHERE status = 'dead'")[0][0]


def received_counts(receiver) -> Counter:
    """How many times each event id reached the receiver."""
    with receiver.lock:
        return Counter(r.headers.get("X-hookstream-Event-Id") for r in receiver.requests)


def received_seqs(receiver) -> dict[str, int]:
    """Event id → the load's sequence number, read from the delivered bodies."""
    with receiver.lock:
        return {r.headers.get("X-hookstream-Event-Id"): json.loads(r.body)["seq"] for r in receiver.requests}
