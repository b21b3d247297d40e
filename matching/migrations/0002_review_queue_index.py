"""The review queue's default order (confidence, highest first) read from an index.

RunSQL (no model state): the index serves review.selectors' queue reads, which order current
proposals by confidence and join their record's state; Postgres walks this index backwards and
stops after a page instead of sorting every proposal of the workspace.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("matching", "0001_initial")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS proposal_current_confidence_idx "
            "ON matching_proposal (workspace_id, confidence, id) WHERE is_current",
            reverse_sql="DROP INDEX IF EXISTS proposal_current_confidence_idx",
        ),
    ]
