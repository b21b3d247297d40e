"""Decision is review's now (review 0001): matching forgets it in Django's state only.

The table, `matching_decision`, and its rows stay; review's model uses it as it is.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("matching", "0005_model_names_in_both_languages"),
        ("review", "0001_decision_from_matching"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name="Decision")],
        ),
    ]
