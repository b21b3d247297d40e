"""The task worker the demo runs beside its site: django-q2's own cluster, started and stopped
with the demo, so what the site queues (a sync on connecting, the first sync, postings) runs
without anyone typing `make worker`.

The cluster is forked from this process (django-q2 forks on Linux), so it inherits the settings
the demo pointed at the sandboxes; the connections of the calling thread are closed first, so
no forked process shares a database socket with it.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from django import db
from django.core.management import call_command
from django_q.brokers import get_broker
from django_q.cluster import Cluster
from django_q.conf import Conf


@dataclass
class RunningWorker:
    cluster: Cluster

    def stop(self) -> None:
        """Stop the cluster; a task under way finishes first (django-q2's own stop)."""
        self.cluster.stop()


def task_worker_start(*, workers: int | None = None, schedules: bool = True) -> RunningWorker:
    """Start django-q2's cluster (workers and scheduler) in child processes of this one.

    `schedules` upserts the periodic tasks first (well/schedules.py), as a deploy would.
    """
    if schedules:
        call_command("setup_schedules", verbosity=0)
    if workers is not None:
        Conf.WORKERS = workers
    db.connections.close_all()
    # Cluster() takes over SIGINT and SIGTERM to stop itself; the demo keeps its own handling
    # (Ctrl-C stops the demo, which stops the worker).
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    cluster = Cluster(get_broker())
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    cluster.start()
    return RunningWorker(cluster=cluster)
