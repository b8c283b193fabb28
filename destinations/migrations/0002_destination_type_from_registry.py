# The type column's choices come from the provider registry (destinations.providers): adding a
# destination type adds a provider module, not a migration.

import destinations.providers.base
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("destinations", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="destination",
            name="type",
            field=models.CharField(choices=destinations.providers.base.type_choices, max_length=20),
        ),
    ]
