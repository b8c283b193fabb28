"""Drop the indexes of the hot write path that no query can use (PostgreSQL only).

Every ingest inserts one event and one delivery per route, every attempt one attempt row,
and each of those inserts updates every index of its table. Django gives each primary and
foreign key an index of its own, and on PostgreSQL a second, ``varchar_pattern_ops`` one
(``…_like``) for ``LIKE 'prefix%'`` lookups, which nothing here makes on ids. Of those, the
following are dropped:

* every ``…_like`` index of the event, delivery and attempt ids and foreign keys;
* single-column foreign-key indexes whose column leads a named index of the same table,
  which answers the same lookups: events (organization, source), deliveries (event:
  ``delivery_event``), attempts (organization, destination, event).

The delivery's ``destination_id`` index stays: the destination list counts deliveries per
destination from it alone (an index-only scan). Indexes are found by their columns and the
names Django gave them, and dropped ``CONCURRENTLY`` so that writes go on meanwhile. The
model state is unchanged; reversing this migration does not re-create them.
"""

from django.db import migrations

# table -> foreign-key columns whose plain index is redundant (the _like ones all go).
REDUNDANT_PLAIN = {
    "intake_event": {"organization_id", "source_id"},
    "deliveries_delivery": {"event_id"},
    "deliveries_deliveryattempt": {"organization_id", "destination_id", "event_id"},
}


def redundant_indexes(connection, table: str) -> list[str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    names = []
    for name, info in constraints.items():
        if not info["index"] or info["unique"] or info["primary_key"] or len(info["columns"]) != 1:
            continue
        column = info["columns"][0]
        if not name.startswith(f"{table}_{column}_"):
            continue  # a named index of the model, not one Django derived from a key
        if name.endswith("_like") or column in REDUNDANT_PLAIN[table]:
            names.append(name)
    return sorted(names)


def drop(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    for table in REDUNDANT_PLAIN:
        for name in redundant_indexes(connection, table):
            schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("deliveries", "0004_attempt_request_method_length"),
        ("intake", "0003_event_list_indexes"),
    ]

    operations = [migrations.RunPython(drop, migrations.RunPython.noop, elidable=False)]
