"""The tenant's retry outcomes by local hour, learned for each card brand and country too.

RetryHourStat's 24 rows (every card) become RetryStat's rows of segment "".
"""

from typing import Any

from django.db import migrations, models


def copy_hours(apps: Any, schema_editor: Any) -> None:
    old = apps.get_model("engine", "RetryHourStat")
    new = apps.get_model("engine", "RetryStat")
    new.objects.bulk_create(
        new(segment="", hour=row.hour, successes=row.successes, attempts=row.attempts)
        for row in old.objects.order_by("hour")
    )


def copy_hours_back(apps: Any, schema_editor: Any) -> None:
    old = apps.get_model("engine", "RetryHourStat")
    new = apps.get_model("engine", "RetryStat")
    old.objects.bulk_create(
        old(hour=row.hour, successes=row.successes, attempts=row.attempts)
        for row in new.objects.filter(segment="").order_by("hour")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("engine", "0013_policy_key_help_text"),
    ]

    operations = [
        migrations.CreateModel(
            name="RetryStat",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("segment", models.CharField(blank=True, max_length=40)),
                ("hour", models.PositiveSmallIntegerField()),
                ("successes", models.PositiveIntegerField(default=0)),
                ("attempts", models.PositiveIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("segment", "hour"), name="retry_stat_segment_hour"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("hour__lte", 23)), name="retry_stat_hour_valid"
                    ),
                ],
            },
        ),
        migrations.RunPython(copy_hours, copy_hours_back),
        migrations.DeleteModel(name="RetryHourStat"),
    ]
