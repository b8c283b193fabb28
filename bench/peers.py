"""Peers: the same webhooks drained by hookstream and by the Django packages a team would pick.

    .venv/bin/python bench/peers.py [--webhooks 2000] [--only NAME]

Systems (``--only`` takes one of these names):

* ``hookstream`` — ``bench.stack.Stack`` (the Procfile's shape: gunicorn, one Celery worker,
  beat) with one signed HTTP destination (HMAC-SHA256 over ``{timestamp}.{body}``);
* ``django-webhook`` (0.0.15) and ``django-webhook2`` (0.11.0) — each installed with pinned
  Django, Celery, redis and psycopg (the versions of hookstream's ``requirements.txt``) in its
  own virtualenv under ``bench/.peers/<name>/venv`` (git-ignored, created by this script
  with ``python3.11 -m venv`` and pip, reused while the pins are unchanged), and a minimal
  Django project written next to it: an ``Order`` model listed in ``DJANGO_WEBHOOK["MODELS"]``
  (its saves trigger ``<model>/create`` as the packages document), one ``Webhook`` row
  subscribed to that topic with one ``WebhookSecret`` (so requests are signed), PostgreSQL,
  Redis as the broker, results ignored, and database connections kept between tasks
  (Django's ``CONN_MAX_AGE`` plus Celery's ``CELERY_DB_REUSE_MAX``; without it Celery's
  Django fix-up closes the connection around every task — ``--no-db-reuse`` measures that).

Every system gets the same receiver (``bench.stack.start_receiver``), the same ~870-byte
body per event (``bench.stack.event_body``) and the same worker shape: one Celery worker,
threads pool, concurrency 8, prefetch multiplier 1 (the Procfile's), ``--without-gossip
--without-mingle``, log level INFO.

**Drain**: with the worker stopped, ``--webhooks`` triggering events are created
(hookstream: posted to its ingest endpoint by 4 client processes; the peers: ``Order`` rows
saved one by one, each save enqueueing its webhook task); then the worker starts and the
receiver counts requests until it has them all. The figure is deliveries/s from the first to
the last receipt (worker start-up excluded, as ``delivery_throughput.py``'s engine drain);
worker start → last receipt is shown too. ``pg_stat_database`` counters of each system's own
database during the drain give transactions and rows inserted/updated per delivery.
The ratio is hookstream's drain rate over the best peer's, from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import (  # noqa: E402
    PG_ADMIN_URL,
    PG_BASE,
    REDIS_BASE,
    ROOT,
    Stack,
    _stop_group,
    ingest,
    machine,
    print_json_line,
    print_table,
    start_receiver,
    uptime,
)

PEERS_DIR = ROOT / "bench" / ".peers"
GOAL_RATIO = 3.0
SIGNING_SECRET = "bench-signing-secret-0123456789"
# The libraries both peers need, pinned to the versions hookstream itself runs on.
SHARED_PINS = ("Django", "celery", "kombu", "redis", "psycopg[binary]", "requests")
STAT_COLUMNS = ("xact_commit", "tup_inserted", "tup_updated", "tup_deleted", "tup_fetched")


@dataclass(frozen=True)
class Peer:
    name: str
    requirement: str
    settings_extra: str  # lines appended to the peer project's settings

    @property
    def home(self) -> Path:
        return PEERS_DIR / self.name

    @property
    def venv(self) -> Path:
        return self.home / "venv"

    @property
    def project(self) -> Path:
        return self.home / "project"

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)


PEERS = {
    "django-webhook": Peer("django-webhook", "django-webhook==0.0.15", ""),
    # The fork registers its admin on django.contrib.admin.site unless told otherwise; the
    # benchmark project has no admin.
    "django-webhook2": Peer("django-webhook2", "django-webhook2==0.11.0", 'DJANGO_WEBHOOK["ADMIN_SITE"] = None\n'),
}
SYSTEMS = ("hookstream", *PEERS)


def log(message: str) -> None:
    print(f"[peers] {message}", file=sys.stderr, flush=True)


def pins() -> list[str]:
    """``SHARED_PINS`` as pinned in hookstream's ``requirements.txt``."""
    found = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name, _, version = line.strip().partition("==")
        if version and name.lower() in {p.lower() for p in SHARED_PINS}:
            found[name.lower()] = f"{name}=={version}"
    missing = [p for p in SHARED_PINS if p.lower() not in found]
    if missing:
        raise SystemExit(f"requirements.txt pins none of {missing}")
    # Celery's documented Redis install is the ``celery[redis]`` bundle (kombu's transport needs
    # ``packaging`` besides redis-py).
    return [found[p.lower()].replace("celery==", "celery[redis]==") for p in SHARED_PINS]


# --- a peer's virtualenv and project ----------------------------------------------------------


def peer_install(peer: Peer, python: str) -> None:
    """Create the peer's virtualenv and install its pinned packages (skipped when up to date)."""
    requirements = [peer.requirement, *pins()]
    marker = peer.home / "installed.json"
    if marker.exists() and json.loads(marker.read_text()) == requirements and Path(peer.bin("celery")).exists():
        return
    started = time.monotonic()
    peer.home.mkdir(parents=True, exist_ok=True)
    if not Path(peer.bin("python")).exists():
        subprocess.run([python, "-m", "venv", str(peer.venv)], check=True)
    subprocess.run([peer.bin("pip"), "install", "-q", "--disable-pip-version-check", *requirements], check=True)
    marker.write_text(json.dumps(requirements))
    log(f"{peer.name}: virtualenv ready ({time.monotonic() - started:.0f} s): {' '.join(requirements)}")


def peer_project(peer: Peer) -> None:
    """Write the minimal Django project the peer runs in (overwritten on every run)."""
    files = {
        "manage.py": """\
            import os
            import sys

            if __name__ == "__main__":
                os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peerproj.settings")
                from django.core.management import execute_from_command_line

                execute_from_command_line(sys.argv)
            """,
        "peerproj/__init__.py": """\
            from .celery import app as celery_app

            __all__ = ("celery_app",)
            """,
        # Celery's documented Django layout ("First steps with Django").
        "peerproj/celery.py": """\
            import os

            from celery import Celery

            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peerproj.settings")
            app = Celery("peerproj")
            app.config_from_object("django.conf:settings", namespace="CELERY")
            app.autodiscover_tasks()
            """,
        "peerproj/settings.py": """\
            import os

            SECRET_KEY = "bench-peer-secret-key-not-for-production-0123456789"
            DEBUG = False
            ALLOWED_HOSTS = ["127.0.0.1"]
            USE_TZ = True
            TIME_ZONE = "UTC"
            INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django_webhook", "shop"]
            DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
            DB_REUSE = os.environ.get("PEER_DB_REUSE", "true") == "true"
            DATABASES = {
                "default": {
                    "ENGINE": "django.db.backends.postgresql",
                    "NAME": os.environ["PEER_DB_NAME"],
                    "USER": os.environ.get("PEER_DB_USER", "postgres"),
                    "PASSWORD": os.environ.get("PEER_DB_PASSWORD", ""),
                    "HOST": os.environ.get("PEER_DB_HOST", "127.0.0.1"),
                    "PORT": os.environ.get("PEER_DB_PORT", "5432"),
                    # Django's persistent connections ...
                    "CONN_MAX_AGE": 600 if DB_REUSE else 0,
                }
            }
            CELERY_BROKER_URL = os.environ["PEER_BROKER_URL"]
            CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
            CELERY_TASK_IGNORE_RESULT = True
            CELERY_WORKER_PREFETCH_MULTIPLIER = 1
            if DB_REUSE:
                # ... and Celery's: its Django fix-up closes every connection before and after
                # each task unless CELERY_DB_REUSE_MAX says how many tasks may share one.
                CELERY_DB_REUSE_MAX = 1000
            DJANGO_WEBHOOK = {"MODELS": ["shop.Order"]}
            LOGGING = {
                "version": 1,
                "disable_existing_loggers": False,
                "handlers": {"console": {"class": "logging.StreamHandler"}},
                "root": {"handlers": ["console"], "level": "WARNING"},
            }
            """,
        "shop/__init__.py": "",
        "shop/models.py": """\
            from django.db import models


            class Order(models.Model):
                number = models.IntegerField()
                data = models.JSONField()
            """,
        "shop/migrations/__init__.py": "",
        "shop/migrations/0001_initial.py": """\
            from django.db import migrations, models


            class Migration(migrations.Migration):
                initial = True
                dependencies = []
                operations = [
                    migrations.CreateModel(
                        name="Order",
                        fields=[
                            ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                            ("number", models.IntegerField()),
                            ("data", models.JSONField()),
                        ],
                    ),
                ]
            """,
        # One-shot commands the benchmark runs inside the peer's virtualenv.
        "bench_peer.py": """\
            import json
            import os
            import sys
            import time

            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peerproj.settings")
            sys.path.insert(0, os.environ["HOOKSTREAM_ROOT"])
            import django

            django.setup()
            from bench.stack import event_body  # stdlib-only module: the same bodies as hookstream's
            from django.db import connection
            from django_webhook.models import Webhook, WebhookEvent, WebhookSecret, WebhookTopic
            from shop.models import Order

            command = sys.argv[1]
            if command == "subscribe":
                # As the packages' quickstart: a Webhook row, subscribed to the model's create topic.
                topic, _ = WebhookTopic.objects.get_or_create(name="shop.Order/create")
                webhook = Webhook(url=sys.argv[2])
                webhook.save()
                webhook.topics.set([topic])
                WebhookSecret.objects.create(webhook=webhook, token=sys.argv[3])
                print(json.dumps({"webhook": webhook.id}))
            elif command == "create":
                count = int(sys.argv[2])
                started = time.monotonic()
                for number in range(count):
                    Order.objects.create(number=number, data=json.loads(event_body(number)))
                print(json.dumps({"created": count, "seconds": time.monotonic() - started}))
            elif command == "events":
                rows = WebhookEvent.objects.values_list("status").order_by()
                counts = {}
                for (status,) in rows:
                    counts[status] = counts.get(status, 0) + 1
                print(json.dumps(counts))
            elif command == "settings":
                from celery import current_app

                print(json.dumps({
                    "db_reuse_max": current_app.conf.get("CELERY_DB_REUSE_MAX"),
                    "conn_max_age": connection.settings_dict["CONN_MAX_AGE"],
                }))
            """,
    }
    for relative, text in files.items():
        path = peer.project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        content = textwrap.dedent(text)
        if relative == "peerproj/settings.py":
            content += peer.settings_extra
        path.write_text(content)


# --- measuring a peer -----------------------------------------------------------------------------


def database_counters(database_url: str, db_name: str) -> dict[str, int]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            f"SELECT {', '.join(STAT_COLUMNS)} FROM pg_stat_database WHERE datname = %s", (db_name,)
        ).fetchone()
    return dict(zip(STAT_COLUMNS, row, strict=True)) if row else {}


def counters_per_delivery(before: dict, after: dict, delivered: int) -> dict[str, float | None]:
    return {
        key: round((after.get(key, 0) - before.get(key, 0)) / delivered, 2) if delivered else None
        for key in STAT_COLUMNS
    }


def drain_times(receiver, expected: int, timeout: float) -> tuple[int, list[float]]:
    arrived = receiver.wait_for(expected, timeout=timeout)
    time.sleep(1.0)  # late repeats, and pg_stat_database flushes its counters
    return arrived, sorted(r["at"] for r in receiver.records())


def rate_of(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


def run_peer(peer: Peer, receiver, args) -> dict:
    db_name = f"{args.db_name}_{peer.name.replace('-', '_')}"
    parts = urlsplit(PG_BASE)
    broker_db = args.redis_db + 2
    broker_url = f"{REDIS_BASE}/{broker_db}"
    log_dir = Path(tempfile.mkdtemp(prefix=f"hookstream-peer-{peer.name}-"))
    env = {
        **os.environ,
        "PEER_DB_NAME": db_name,
        "PEER_DB_USER": parts.username or "postgres",
        "PEER_DB_PASSWORD": parts.password or "",
        "PEER_DB_HOST": parts.hostname or "127.0.0.1",
        "PEER_DB_PORT": str(parts.port or 5432),
        "PEER_BROKER_URL": broker_url,
        "PEER_DB_REUSE": "false" if args.no_db_reuse else "true",
        "HOOKSTREAM_ROOT": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }

    def run(*command: str) -> str:
        result = subprocess.run(command, cwd=peer.project, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{peer.name}: {' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')
    client = redis.Redis.from_url(broker_url)
    client.flushdb()
    run(peer.bin("python"), "manage.py", "migrate", "--noinput", "-v", "0")
    run(peer.bin("python"), "bench_peer.py", "subscribe", receiver.url_for(tag=peer.name), SIGNING_SECRET)
    settings = json.loads(run(peer.bin("python"), "bench_peer.py", "settings"))
    created = json.loads(run(peer.bin("python"), "bench_peer.py", "create", str(args.webhooks)))
    queued = client.llen("celery")
    client.close()
    log(f"{peer.name}: {created['created']} orders saved in {created['seconds']:.1f} s, {queued} tasks queued")

    receiver.reset()
    database_url = f"{PG_BASE}/{db_name}"
    before = database_counters(database_url, db_name)
    command = [
        peer.bin("celery"),
        "-A",
        "peerproj",
        "worker",
        "--loglevel",
        "INFO",
        "--pool",
        "threads",
        "--concurrency",
        str(args.celery_concurrency),
        "--prefetch-multiplier",
        "1",
        "--hostname",
        f"peer-{peer.name}@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    worker_log = log_dir / "worker.log"
    with open(worker_log, "ab") as out:
        started = time.time()
        worker = subprocess.Popen(
            command, cwd=peer.project, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        arrived, times = drain_times(receiver, args.webhooks, args.timeout)
    finally:
        _stop_group(worker, grace=30)
    time.sleep(0.5)  # a backend reports its statistics when its connection closes
    after = database_counters(database_url, db_name)
    events = json.loads(run(peer.bin("python"), "bench_peer.py", "events"))
    if arrived < args.webhooks:
        print(worker_log.read_text(errors="replace")[-3000:], file=sys.stderr)
    return {
        "system": peer.name,
        "version": peer.requirement.split("==")[1],
        "arrived": len(times),
        "rate": rate_of(times),
        "wall_rate": len(times) / (times[-1] - started) if times else 0.0,
        "recorded": events,
        "per_delivery": counters_per_delivery(before, after, len(times)),
        "settings": settings,
    }


def run_hookstream(receiver, args) -> dict:
    with Stack(
        db_name=args.db_name,
        redis_db=args.redis_db,
        celery_concurrency=args.celery_concurrency,
    ) as stack:
        destination = stack.http_destination(
            receiver.url_for(tag="hookstream"),
            name="peers receiver",
            timeout_ms=10000,
            signing_config={"secret": SIGNING_SECRET, "algorithm": "sha256", "include_timestamp": True},
        )
        _, ingest_url = stack.source_to(destination["id"], name="peers source")
        stack.workers_stop()
        started = time.time()
        sent = ingest(ingest_url, args.webhooks, args.senders)
        accepted = sum(1 for row in sent if row[3] == 200)
        log(f"hookstream: {accepted} of {len(sent)} events accepted in {time.time() - started:.1f} s (worker stopped)")
        receiver.reset()
        # Idle backends (gunicorn's kept connections) report their statistics after 10 s:
        # wait, so the ingest's rows are not counted in the drain's.
        time.sleep(11)
        before = stack.database_counters()
        started = time.time()
        stack.workers_start(wait=False)
        arrived, times = drain_times(receiver, accepted, args.timeout)
        stack.workers_stop()  # its backends report their statistics as their connections close
        time.sleep(0.5)
        after = stack.database_counters()
        succeeded = stack.sql(
            "SELECT count(*) FROM deliveries_delivery WHERE destination_id = %s AND status = 'succeeded'",
            (destination["id"],),
        )[0][0]
        attempts = stack.sql("SELECT count(*) FROM deliveries_deliveryattempt")[0][0]
    return {
        "system": "hookstream",
        "version": "this commit",
        "arrived": len(times),
        "accepted": accepted,
        "rate": rate_of(times),
        "wall_rate": len(times) / (times[-1] - started) if times else 0.0,
        "recorded": {"succeeded deliveries": succeeded, "attempt rows": attempts},
        "per_delivery": counters_per_delivery(before, after, len(times)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--webhooks", type=int, default=2000, help="triggering events per system (default 2000)")
    parser.add_argument("--only", choices=SYSTEMS, action="append", help="measure only this system (repeatable)")
    parser.add_argument("--senders", type=int, default=4, help="hookstream ingest client processes (default 4)")
    parser.add_argument("--celery-concurrency", type=int, default=8)
    parser.add_argument("--no-db-reuse", action="store_true", help="the peers without connection reuse")
    parser.add_argument("--python", default="python3.11", help="interpreter for the peers' virtualenvs")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for a drain")
    parser.add_argument("--db-name", default="hs_bench_a", help="hookstream's database; peers add a suffix")
    parser.add_argument(
        "--redis-db", type=int, default=12, help="hookstream uses this db and the next; the peers' broker the one after"
    )
    args = parser.parse_args()
    systems = args.only or list(SYSTEMS)

    for name in systems:
        if name in PEERS:
            peer_install(PEERS[name], args.python)
            peer_project(PEERS[name])

    load_before = uptime()
    log(f"load before: {load_before}")
    results = []
    with start_receiver() as receiver:
        for name in systems:
            results.append(
                run_hookstream(receiver, args) if name == "hookstream" else run_peer(PEERS[name], receiver, args)
            )
            log(f"{name}: {results[-1]['rate']:.1f} deliveries/s ({results[-1]['arrived']} arrived)")
    load_after = uptime()

    by_name = {r["system"]: r for r in results}
    peer_results = [r for r in results if r["system"] in PEERS]
    best = max(peer_results, key=lambda r: r["rate"]) if peer_results else None
    ratio = by_name["hookstream"]["rate"] / best["rate"] if best and "hookstream" in by_name and best["rate"] else None
    rows = []
    for r in results:
        per = r["per_delivery"]
        rows.append(
            [
                r["system"],
                r["version"],
                f"{r['arrived']} / {args.webhooks}",
                round(r["rate"], 1),
                round(r["wall_rate"], 1),
                per["xact_commit"],
                per["tup_inserted"],
                per["tup_updated"],
                ", ".join(f"{k} {v}" for k, v in r["recorded"].items()),
            ]
        )
    print_table(
        rows,
        [
            "system",
            "version",
            "arrived",
            "drain/s",
            "start→last/s",
            "xacts/dlv",
            "ins/dlv",
            "upd/dlv",
            "recorded afterwards",
        ],
        title=f"Drain of {args.webhooks} webhooks, one Celery worker (threads × {args.celery_concurrency}, prefetch 1)"
        + (", peers without connection reuse" if args.no_db_reuse else ""),
    )
    if best and ratio is not None:
        print(
            f"\nhookstream / best peer ({best['system']}): {ratio:.2f} "
            f"(goal ≥ {GOAL_RATIO:g}: {'PASS' if ratio >= GOAL_RATIO else 'FAIL'})"
        )
    print(f"load before: {load_before}\nload after:  {load_after}")
    print_json_line(
        {
            "benchmark": "peers",
            "webhooks": args.webhooks,
            "deliveries_per_s": {r["system"]: round(r["rate"], 1) for r in results},
            "start_to_last_per_s": {r["system"]: round(r["wall_rate"], 1) for r in results},
            "arrived": {r["system"]: r["arrived"] for r in results},
            "per_delivery": {r["system"]: r["per_delivery"] for r in results},
            "best_peer": best["system"] if best else None,
            "ratio_to_best_peer": round(ratio, 3) if ratio is not None else None,
            "goal_ratio": GOAL_RATIO,
            "peer_db_reuse": not args.no_db_reuse,
            "peer_settings": {r["system"]: r["settings"] for r in peer_results},
            "celery": f"1x threads concurrency {args.celery_concurrency} prefetch 1",
            "load_before": load_before,
            "load_after": load_after,
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
