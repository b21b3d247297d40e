"""Start both sandboxes on real sockets, seeded from one world (used by `manage.py sandbox`).

    from sandbox.runner import start_sandboxes
    qbo, qonto = start_sandboxes("127.0.0.1", 0, 0, seed=1, bills=200, data_dir=None)
    ... qbo.base_url, qonto.base_url ...; qbo.stop(); qonto.stop()

The apps are `qbo.server.get_app()` / `qonto.server.get_app()`. OAuth client credentials come
from `SANDBOX_CLIENT_ID` / `SANDBOX_CLIENT_SECRET` (see `sandbox_credentials`). With a data
directory each sandbox keeps its state in `DIR/quickbooks` and `DIR/qonto`; a restart on
existing state does not reseed.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from sandbox.qonto import QontoSandbox
from sandbox.quickbooks import QuickBooksSandbox
from sandbox.server import RunningServer, serve_in_thread
from sandbox.world import build_world

DEFAULT_CLIENT_ID = "well-sandbox-client"
DEFAULT_CLIENT_SECRET = "well-sandbox-secret"


def sandbox_credentials() -> tuple[str, str]:
    """The OAuth client id and secret both sandboxes accept."""
    return (
        os.environ.get("SANDBOX_CLIENT_ID") or DEFAULT_CLIENT_ID,
        os.environ.get("SANDBOX_CLIENT_SECRET") or DEFAULT_CLIENT_SECRET,
    )


def build_sandboxes(
    *,
    seed: int = 1,
    bills: int = 200,
    data_dir: Path | None = None,
    qonto_plan: str = "essential",
    qonto_error_pointers: str = "index",
    now: datetime | None = None,
) -> tuple[QuickBooksSandbox, QontoSandbox]:
    """Both WSGI apps, seeded from `build_world(seed, bills, now)` unless they resume saved
    state. The world's dates are relative to `now` (by default the present moment)."""
    client_id, client_secret = sandbox_credentials()
    root = Path(data_dir) if data_dir is not None else None
    qbo = QuickBooksSandbox(
        client_id=client_id,
        client_secret=client_secret,
        data_dir=root / "quickbooks" if root else None,
    )
    qonto = QontoSandbox(
        client_id=client_id,
        client_secret=client_secret,
        data_dir=root / "qonto" if root else None,
        plan=qonto_plan,
        error_pointers=qonto_error_pointers,
    )
    qonto_resumed = bool(getattr(qonto.store, "loaded_from_disk", False))
    if not qbo.has_state() or not qonto_resumed:
        world = build_world(seed=seed, bills=bills, now=now)
        if not qbo.has_state():
            qbo.seed(world.quickbooks)
        if not qonto_resumed:
            qonto.seed(**world.qonto)
    return qbo, qonto


def start_sandboxes(
    host: str = "127.0.0.1",
    qbo_port: int = 0,
    qonto_port: int = 0,
    seed: int = 1,
    bills: int = 200,
    data_dir: Path | None = None,
    qonto_plan: str = "essential",
    qonto_error_pointers: str = "index",
    now: datetime | None = None,
) -> tuple[RunningServer, RunningServer]:
    """Serve both sandboxes in background threads; port 0 picks a free port."""
    qbo_app, qonto_app = build_sandboxes(
        seed=seed,
        bills=bills,
        data_dir=data_dir,
        qonto_plan=qonto_plan,
        qonto_error_pointers=qonto_error_pointers,
        now=now,
    )
    qbo = serve_in_thread(qbo_app, host=host, port=qbo_port)
    try:
        qonto = serve_in_thread(qonto_app, host=host, port=qonto_port)
    except OSError:
        qbo.stop()
        raise
    return qbo, qonto
