"""Decision moves from matching to review: in Django's state only; the table stays as it is.

The table keeps its name, `matching_decision`, with its rows, constraints and indexes: the
previous release, still serving while `migrate` runs, reads and writes it (docs/operations.md,
"Upgrading"). matching 0006 removes the model from matching's state once it is review's.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("connectors", "0012_model_names_in_both_languages"),
        ("matching", "0005_model_names_in_both_languages"),
        ("well", "0005_workspace_language_time_zone_and_model_names"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="Decision",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("approve", "Approved"),
                                    ("reject", "Rejected"),
                                    ("pin", "Pinned another candidate"),
                                    ("upload_as_new", "Upload as new"),
                                    ("override", "Override"),
                                    ("edit", "Edited"),
                                ],
                                max_length=16,
                            ),
                        ),
                        ("note", models.TextField(blank=True)),
                        ("actor_type", models.CharField(max_length=10)),
                        ("actor_id", models.CharField(blank=True, max_length=64)),
                        ("actor_label", models.CharField(max_length=200)),
                        (
                            "right_action",
                            models.CharField(
                                blank=True,
                                choices=[
                                    ("link", "Link to a Qonto entry"),
                                    ("create", "Upload as new"),
                                ],
                                max_length=8,
                            ),
                        ),
                        ("edits", models.JSONField(blank=True, default=dict)),
                        ("state_before", models.CharField(max_length=16)),
                        ("state_after", models.CharField(max_length=16)),
                        (
                            "created_at",
                            models.DateTimeField(default=django.utils.timezone.now, editable=False),
                        ),
                        (
                            "proposal",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="decisions",
                                to="matching.proposal",
                            ),
                        ),
                        (
                            "record",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="decisions",
                                to="connectors.sourcerecord",
                            ),
                        ),
                        (
                            "right_target",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="connectors.qontoentry",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "workspace",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="well.workspace",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "decision",
                        "verbose_name_plural": "decisions",
                        "db_table": "matching_decision",
                        "ordering": ["-created_at", "-id"],
                        "indexes": [
                            models.Index(
                                fields=["workspace", "created_at"], name="decision_workspace_idx"
                            ),
                            models.Index(
                                fields=["workspace", "actor_id"], name="decision_actor_idx"
                            ),
                        ],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(
                                    (
                                        "kind__in",
                                        [
                                            "approve",
                                            "reject",
                                            "pin",
                                            "upload_as_new",
                                            "override",
                                            "edit",
                                        ],
                                    )
                                ),
                                name="decision_kind_valid",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(
                                    models.Q(("kind", "override"), _negated=True),
                                    models.Q(("note", ""), _negated=True),
                                    _connector="OR",
                                ),
                                name="decision_override_has_note",
                            ),
                        ],
                    },
                ),
            ],
        ),
    ]
