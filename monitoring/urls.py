"""Monitoring routes, included at the root by ``hookstream.urls``: the probes and
``/metrics`` at the top level, the API under ``/v1/``. A trailing slash is optional."""

from django.urls import re_path

from monitoring import health

urlpatterns = [
    re_path(r"^healthz/?$", health.healthz, name="healthz"),
    re_path(r"^readyz/?$", health.readyz, name="readyz"),
]
