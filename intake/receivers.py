"""Keeps the routing caches of every process honest: any save or delete of a row that
decides how an organization's events are routed bumps the organization's routing version
(``hookstream.versions``), which the ingest look-up (``intake.selectors.source_for_ingest``)
checks on every request.

Model signals rather than calls in each service: sources, connections, topics,
subscriptions and destinations are written by the API's services, the console, the admin
and the tests' factories alike, and a write that forgot to bump would leave every worker
routing by stale rows. Writes that bypass ``save()`` (a queryset ``update``) bump
explicitly (``destinations.services.destination_delete``); the counters ingest updates with
plain SQL route nothing and bump nothing.
"""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save

from destinations.models import Destination
from hookstream import versions
from intake.models import Connection, Source, Subscription, Topic

ROUTING_MODELS = (Source, Connection, Topic, Subscription, Destination)


def routing_changed(sender, instance, **kwargs) -> None:
    versions.bump(versions.routes_scope(instance.organization_id))


for _model in ROUTING_MODELS:
    post_save.connect(routing_changed, sender=_model, dispatch_uid=f"intake.routing_saved.{_model.__name__}")
    post_delete.connect(routing_changed, sender=_model, dispatch_uid=f"intake.routing_deleted.{_model.__name__}")
