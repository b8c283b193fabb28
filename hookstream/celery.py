import logging.config
import os

from celery import Celery, signals
from celery.fixups.django import DjangoFixup
from django.conf import settings
from django.db import close_old_connections
from kombu import Exchange, Queue

from deliveries.dispatch import QUEUES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookstream.settings")

app = Celery("hookstream")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Workers consume the default queue and the queue of timed wake-ups (retry countdowns and
# put-backs), both named by ``deliveries.dispatch``. The Redis transport polls the two in
# turn, so a retry that is due is fetched at once even behind a backlog of new deliveries.
if not app.conf.task_queues:
    app.conf.task_default_queue = QUEUES[0]
    app.conf.task_queues = tuple(Queue(name, Exchange(name), routing_key=name) for name in QUEUES)


@signals.setup_logging.connect(weak=False)
def _django_logging(**kwargs) -> None:
    """Worker and beat log as the web does (``LOGGING``: LOG_FORMAT, LOG_LEVEL, the request /
    delivery context and the quiet filter) rather than through Celery's own handlers."""
    logging.config.dictConfig(settings.LOGGING)


@signals.worker_init.connect(weak=False)
def _database_connections_as_django_does(sender=None, **kwargs) -> None:
    """Keep database connections between tasks, by Django's own rules.

    Celery's Django fix-up closes the thread's database connection before and after every
    task, so each delivery paid for a new PostgreSQL connection (a third of a worker's time
    in the delivery benchmark). Its task hooks are replaced by Django's request-cycle rule,
    ``close_old_connections``: a connection is reused until ``CONN_MAX_AGE``, checked when
    ``CONN_HEALTH_CHECKS`` is on, and closed after an error or a transaction left open.
    This receiver is connected after the fix-up's, so the fix-up is installed when it runs.
    """
    worker_app = getattr(sender, "app", None)
    for fixup in getattr(worker_app, "_fixups", None) or getattr(app, "_fixups", []):
        if isinstance(fixup, DjangoFixup):
            worker_fixup = fixup.worker_fixup
            signals.task_prerun.disconnect(worker_fixup.on_task_prerun)
            signals.task_postrun.disconnect(worker_fixup.on_task_postrun)
    signals.task_prerun.connect(_close_old_connections, weak=False)
    signals.task_postrun.connect(_close_old_connections, weak=False)


def _close_old_connections(sender=None, **kwargs) -> None:
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return  # an eager task runs inside its caller's request or test: leave its connection alone
    close_old_connections()
