"""The decisions' content type follows the model to review, with its permissions and history.

Staff permissions on decisions and the admin's history of them point at the content type; moving
it keeps them, where a new `review.decision` type would start without. Before the first
`migrate` of a new database there is no content type yet, and nothing to move.
"""

from django.db import migrations


def _move(apps, schema_editor, source: str, target: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    types = ContentType.objects.using(schema_editor.connection.alias)
    if types.filter(app_label=target, model="decision").exists():
        return  # created after the move: the old one is left to `remove_stale_contenttypes`
    types.filter(app_label=source, model="decision").update(app_label=target)


def to_review(apps, schema_editor):
    _move(apps, schema_editor, "matching", "review")


def to_matching(apps, schema_editor):
    _move(apps, schema_editor, "review", "matching")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("matching", "0006_decision_moved_to_review"),
        ("review", "0001_decision_from_matching"),
    ]

    operations = [migrations.RunPython(to_review, to_matching)]
