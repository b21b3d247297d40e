"""On PostgreSQL the audit trail is append-only: a trigger rejects UPDATE and DELETE."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION well_audit_event_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'well_auditevent is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS well_audit_event_append_only ON well_auditevent;
CREATE TRIGGER well_audit_event_append_only
    BEFORE UPDATE OR DELETE ON well_auditevent
    FOR EACH ROW EXECUTE FUNCTION well_audit_event_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS well_audit_event_append_only ON well_auditevent;
DROP FUNCTION IF EXISTS well_audit_event_append_only();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("well", "0001_initial")]

    operations = [migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP))]
