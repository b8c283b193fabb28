"""Indexes of the event search (``GET /v1/events?search=``).

- ``event_body_trgm`` (PostgreSQL): a trigram GIN index on ``encode(body, 'escape')``, the
  text ``intake.selectors.BodyContains`` matches with ILIKE, so a body substring is found
  through the index instead of reading every body. Needs the ``pg_trgm`` extension (trusted
  since PostgreSQL 13: the database owner may create it).
- ``event_idempotency_key``: the exact idempotency-key arm of the search.

Created ``CONCURRENTLY`` so ingest keeps writing while they build. Plain SQL, kept out of the
model state (an expression GIN index does not exist on SQLite).
"""

from django.db import migrations


def create(apps, schema_editor):
    postgresql = schema_editor.connection.vendor == "postgresql"
    concurrently = "CONCURRENTLY " if postgresql else ""
    schema_editor.execute(
        f"CREATE INDEX {concurrently}IF NOT EXISTS event_idempotency_key ON intake_event (idempotency_key) "
        "WHERE idempotency_key IS NOT NULL"
    )
    if postgresql:
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS event_body_trgm ON intake_event "
            "USING gin (encode(body, 'escape') gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    schema_editor.execute("DROP INDEX IF EXISTS event_body_trgm")
    schema_editor.execute("DROP INDEX IF EXISTS event_idempotency_key")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("intake", "0004_sender_fields")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
