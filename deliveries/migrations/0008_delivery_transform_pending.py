# A delivery whose route transform is still to be applied by the worker (issue 12), and the
# transform_limit dead-letter reason.
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('deliveries', '0007_event_unfinished_index'),
    ]

    operations = [
        migrations.AddField(
            model_name='delivery',
            name='transform_pending',
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AlterField(
            model_name='deadletter',
            name='reason',
            field=models.CharField(choices=[('retries_exhausted', 'Retries Exhausted'), ('permanent_failure', 'Permanent Failure'), ('circuit_open', 'Circuit Open'), ('transform_failed', 'Transform Failed'), ('transform_limit', 'Transform Limit')], max_length=32),
        ),
    ]
