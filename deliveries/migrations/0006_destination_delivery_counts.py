"""Per-destination delivery counts kept by statement triggers (PostgreSQL only).

Creates ``deliveries_destination_delivery_count``, the triggers that append to it on every
insert and delete of deliveries, and fills it with the current counts.
"""

from django.db import migrations, models

TABLE = "deliveries_destination_delivery_count"

CREATE = f"""
CREATE FUNCTION hookstream_delivery_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {TABLE} (destination_id, n)
    SELECT destination_id, count(*) FROM new_rows GROUP BY destination_id;
    RETURN NULL;
END $$;
CREATE FUNCTION hookstream_delivery_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {TABLE} (destination_id, n)
    SELECT destination_id, -count(*) FROM old_rows GROUP BY destination_id;
    RETURN NULL;
END $$;
CREATE TRIGGER delivery_count_insert AFTER INSERT ON deliveries_delivery
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION hookstream_delivery_count_insert();
CREATE TRIGGER delivery_count_delete AFTER DELETE ON deliveries_delivery
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION hookstream_delivery_count_delete();
INSERT INTO {TABLE} (destination_id, n)
    SELECT destination_id, count(*) FROM deliveries_delivery GROUP BY destination_id;
"""

DROP = """
DROP TRIGGER IF EXISTS delivery_count_insert ON deliveries_delivery;
DROP TRIGGER IF EXISTS delivery_count_delete ON deliveries_delivery;
DROP FUNCTION IF EXISTS hookstream_delivery_count_insert();
DROP FUNCTION IF EXISTS hookstream_delivery_count_delete();
"""


def _on_postgres(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("deliveries", "0005_list_indexes")]

    operations = [
        migrations.CreateModel(
            name="DestinationDeliveryCount",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("destination_id", models.CharField(max_length=40)),
                ("n", models.BigIntegerField()),
            ],
            options={
                "db_table": "deliveries_destination_delivery_count",
                "indexes": [models.Index(fields=["destination_id"], name="delivery_count_destination")],
            },
        ),
        migrations.RunPython(_on_postgres(CREATE), _on_postgres(DROP)),
    ]
