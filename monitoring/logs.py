"""Structured logs: the context of every line, JSON on request, and quiet idle processes.

* :data:`log_context` holds what the current request or task is about (request id, the
  request itself for its organization, delivery id…). :class:`ContextFilter` copies it onto
  every record, so each line names the request, organization, destination and delivery it
  belongs to; a value given in ``extra=`` wins.
* ``LOG_FORMAT=json`` (``hookstream.settings``) formats every record as one JSON object per
  line (python-json-logger), the context fields included; the text format appends them.
* :class:`QuietFilter` demotes the lines that the frequent wake-up tasks make every second —
  beat's "Sending due task" and the worker's "received" / "succeeded" — to DEBUG, so an idle
  worker and beat print nothing at INFO.
"""

from __future__ import annotations

import contextvars
import logging

from pythonjsonlogger.json import JsonFormatter

CONTEXT_FIELDS = ("request_id", "organization_id", "destination_id", "delivery_id", "task_id")

log_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("hookstream_log_context", default=None)

# Beat tasks that run every few seconds; their routine lines are DEBUG.
QUIET_TASKS = ("deliveries.beat_tick", "deliveries.fold_delivery_counts", "monitoring.minute")
QUIET_LOGGERS = ("celery.beat", "celery.app.trace", "celery.worker.strategy")


def context_bind(**fields) -> contextvars.Token:
    """Add fields to the current context (until :func:`context_reset` with the token)."""
    current = dict(log_context.get() or {})
    current.update({k: v for k, v in fields.items() if v is not None})
    return log_context.set(current)


def context_reset(token: contextvars.Token) -> None:
    log_context.reset(token)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        context = log_context.get() or {}
        # Django logs a 4xx/5xx answer after the middleware has unwound, with the request.
        request = getattr(record, "request", None) or context.get("request")
        values = dict(context)
        if request is not None:
            values.setdefault("request_id", getattr(request, "request_id", None))
            organization = getattr(request, "organization", None)
            if organization is not None:
                values.setdefault("organization_id", getattr(organization, "pk", organization))
        for name in CONTEXT_FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, values.get(name))
        return True


class QuietFilter(logging.Filter):
    """Routine lines of the frequent beat tasks become DEBUG (shown only at LOG_LEVEL=DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not record.name.startswith(QUIET_LOGGERS):
            return True
        message = record.getMessage()
        if not any(task in message for task in QUIET_TASKS):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().getEffectiveLevel() <= logging.DEBUG


class TextFormatter(logging.Formatter):
    """``time level logger message [request_id=… delivery_id=…]``."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = " ".join(f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS if getattr(record, name, None))
        return f"{text} [{fields}]" if fields else text


class JSONFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, message, the context, and extras."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger", "asctime": "time"})
        kwargs.setdefault("timestamp", False)
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", *args, **kwargs)

    def add_fields(self, log_record, record, message_dict) -> None:
        super().add_fields(log_record, record, message_dict)
        for name in CONTEXT_FIELDS:
            if log_record.get(name) is None:
                log_record.pop(name, None)  # only the fields that apply
        log_record.pop("data", None)  # celery's copy of the message arguments
        log_record.pop("request", None)  # Django's request object (its id is request_id)


class LogContextMiddleware:
    """Binds the request (its id, and its organization once authenticated) to the log context."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = context_bind(request=request)
        try:
            return self.get_response(request)
        finally:
            context_reset(token)
