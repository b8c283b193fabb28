"""BRIN indexes on ``created_at`` of delivery attempts and dead letters (PostgreSQL only).

The metrics rollup job (``monitoring.rollups.rollups_advance``, every minute) and the raw tail
of the metric series read every organization's attempts and dead letters of a time range
(``created_at >= a AND created_at < b``); no B-tree leads with ``created_at`` (the list
indexes lead with the organization or the destination), so each run read the whole table.
Rows are appended in ``created_at`` order, which is what a BRIN index needs: a few pages
summarize the table, and inserts barely pay for it (unlike a B-tree on a timestamp).
``autosummarize`` summarizes each filled block range without waiting for a VACUUM.

Created ``CONCURRENTLY`` so that writes go on meanwhile. Plain SQL, kept out of the model
state (BRIN does not exist on SQLite, where nothing is created).
"""

from django.db import migrations

INDEXES = {
    "attempt_created_brin": "deliveries_deliveryattempt",
    "deadletter_created_brin": "deliveries_deadletter",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, table in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} USING brin (created_at) "
            "WITH (pages_per_range = 32, autosummarize = on)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("deliveries", "0008_delivery_transform_pending")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
