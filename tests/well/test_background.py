from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django_q.models import OrmQ, Schedule
from django_q.tasks import async_task

from well import schedules
from well.management.commands import setup_schedules as setup_schedules_command


def test_the_task_queue_is_configured_safely():
    cluster = settings.Q_CLUSTER

    assert cluster["orm"] == "default"  # enqueueing joins the caller's transaction
    assert cluster["timeout"] < cluster["retry"]  # a slow task is never run twice at once
    assert cluster["max_attempts"] >= 1
    assert cluster["ack_failures"] is True
    assert cluster["catch_up"] is False


@pytest.mark.django_db(transaction=True)
def test_a_task_enqueued_in_a_rolled_back_transaction_leaves_no_row():
    with pytest.raises(RuntimeError), transaction.atomic():
        async_task("math.floor", 1.5)
        raise RuntimeError("rollback")

    assert OrmQ.objects.count() == 0


@pytest.mark.django_db
def test_setup_schedules_upserts_by_name_and_removes_what_is_no_longer_declared(monkeypatch):
    spec = schedules.ScheduleSpec(name="sync-dispatch", func="math.floor", minutes=1)
    # The command module is imported above, before any patch: importing it under the patch
    # would make the patched list its "original" and leak it into later tests.
    monkeypatch.setattr(schedules, "SCHEDULES", [spec])
    monkeypatch.setattr(setup_schedules_command, "SCHEDULES", [spec])
    Schedule.objects.create(name="old", func="connectors.tasks.gone", schedule_type="I")

    call_command("setup_schedules")
    call_command("setup_schedules")

    assert list(Schedule.objects.values_list("name", "func", "minutes")) == [
        ("sync-dispatch", "math.floor", 1)
    ]


def test_every_declared_schedule_points_at_a_real_task():
    from django.utils.module_loading import import_string

    for spec in schedules.SCHEDULES:
        assert callable(import_string(spec.func)), spec.func


def test_no_app_creates_schedules_when_it_starts():
    import inspect

    from django.apps import apps

    for config in apps.get_app_configs():
        if config.name.split(".")[0] in {"well", "connectors", "matching", "review"}:
            assert "Schedule" not in inspect.getsource(type(config))


def test_the_operations_guide_documents_every_environment_variable_and_cluster_knob():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    guide = (root / "docs" / "operations.md").read_text()
    source = (root / "well" / "settings.py").read_text()
    variables = set(re.findall(r'env_\w+\(\s*"([A-Z0-9_]+)"', source))

    assert {"DATABASE_URL", "WELL_MASTER_KEYS", "WELL_TASK_RETRY"} <= variables
    assert sorted(v for v in variables if f"`{v}`" not in guide) == []
    assert sorted(k for k in settings.Q_CLUSTER if f"`{k}`" not in guide) == []
