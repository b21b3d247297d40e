from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction
from django_q.models import Schedule

from well.schedules import SCHEDULES


class Command(BaseCommand):
    help = "Create or update the periodic tasks declared in well/schedules.py (by name)."

    @transaction.atomic
    def handle(self, *args, **options):
        for spec in SCHEDULES:
            _, created = Schedule.objects.update_or_create(
                name=spec.name,
                defaults={
                    "func": spec.func,
                    "schedule_type": Schedule.MINUTES,
                    "minutes": spec.minutes,
                    "repeats": -1,
                },
            )
            self.stdout.write(f"{'created' if created else 'updated'} {spec.name} -> {spec.func}")
        declared = {spec.name for spec in SCHEDULES}
        stale = Schedule.objects.exclude(name__in=declared).filter(func__startswith="connectors.")
        for schedule in stale:
            self.stdout.write(f"removed {schedule.name} (no longer declared)")
        stale.delete()
