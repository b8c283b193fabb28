"""Per-destination delivery counts (see ``DestinationDeliveryCount``)."""

from django.db import connection

from deliveries.models import DestinationDeliveryCount


def delivery_counts_fold() -> int:
    """Fold each destination's count rows into one; returns how many rows were folded.

    One statement: the rows it deletes are exactly the rows it sums, so a concurrent insert
    (a row it does not see) stays for the next fold, and a reader sees either the rows before
    or the rows after — the same sums.
    """
    if connection.vendor != "postgresql":
        return 0  # elsewhere the count is computed from the deliveries themselves
    table = DestinationDeliveryCount._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH moved AS (DELETE FROM {table} RETURNING destination_id, n), "
            "folded AS ("
            f"  INSERT INTO {table} (destination_id, n) "
            "  SELECT destination_id, SUM(n) FROM moved GROUP BY destination_id HAVING SUM(n) <> 0"
            ") SELECT count(*) FROM moved"
        )
        return cursor.fetchone()[0]

