"""Indexes of the event list (``GET /v1/events``), which pages newest first by ``received_at``.

``event_org_received`` serves the list, its cursor (a range start on ``received_at``, then
``id``) and the ``after``/``before`` filters in one index range: a page reads about ``limit``
entries whatever the size of the table. Created ``CONCURRENTLY`` on PostgreSQL so that
ingest keeps writing events while it builds. Plain SQL, kept out of the model state: the
migration adds an index and changes no model.
"""

from django.db import migrations

INDEX = "event_org_received"


def create(apps, schema_editor):
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(
        f"CREATE INDEX {concurrently}IF NOT EXISTS {INDEX} ON intake_event (organization_id, received_at DESC, id DESC)"
    )


def drop(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("intake", "0002_dedup_key")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
